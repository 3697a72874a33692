"""Running benchmark cells as Ray tasks (``run_benchmark(..., engine="ray")``).

Each cell is one Ray task (one CPU, a fresh worker process per cell, so one cell's memory and
threads never reach the next) that runs :func:`~healthsynth.benchmark._cells.run_cell` into a
temporary folder on whichever node it lands on and returns the folder's files; the driver
writes them into the cell's folder under ``cells/``, ``cell.json`` last. So the output folder
is the one the local runner writes, resumable the same way (a cell without ``cell.json`` runs
again), and worker nodes need no shared file system. A cell past its time budget is cancelled
(its worker process is killed) and recorded as ``timeout``; a cell whose worker dies is
recorded as ``failed``, with one sentence. A killed worker cannot remove its temporary folder,
so each folder is named after its worker's process ID, and the next cell on that node (and the
driver, at the end of a run) removes the folders of processes that no longer exist.
"""

from __future__ import annotations

import os
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from healthsynth.benchmark._cells import Cell, run_cell
from healthsynth.benchmark._config import BenchmarkConfig
from healthsynth.data._outputs import pid_alive

__all__ = ["run_cells_on_ray"]


PREFIX = "healthsynth-cell-"


def sweep_orphans() -> list[Path]:
    """Remove the cell folders of worker processes that no longer run; return them.

    A folder is ``healthsynth-cell-<pid>-<random>`` in this node's temporary directory; one
    whose process still runs (or may: another user's) is left alone.
    """
    import shutil

    gone = []
    for folder in Path(tempfile.gettempdir()).glob(f"{PREFIX}*-*"):
        pid = folder.name[len(PREFIX) :].split("-", 1)[0]
        if not pid.isdigit() or pid_alive(int(pid)):
            continue
        shutil.rmtree(folder, ignore_errors=True)
        gone.append(folder)
    return gone


def _cell_task(config: BenchmarkConfig, cell: Cell, threads: int) -> dict[str, bytes]:
    """On a Ray worker: run one cell into a temporary folder; return its files."""
    sweep_orphans()  # what cells killed on this node before left behind
    with tempfile.TemporaryDirectory(prefix=f"{PREFIX}{os.getpid()}-") as tmp:
        root = Path(tmp)
        run_cell(config, cell, root, threads=threads)
        folder = root / cell.folder
        return {
            p.relative_to(folder).as_posix(): p.read_bytes()
            for p in sorted(folder.rglob("*"))
            if p.is_file()
        }


def _write_cell_files(folder: Path, files: dict[str, bytes]) -> dict[str, Any]:
    """Write a finished cell's files (``cell.json`` last); return its ``cell.json``."""
    import json

    from healthsynth.data._io import atomic_write_text

    folder.mkdir(parents=True, exist_ok=True)
    for name, data in files.items():
        if name == "cell.json":
            continue
        target = folder / name
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(data)
    info = json.loads(files["cell.json"].decode("utf-8"))
    atomic_write_text(folder / "cell.json", json.dumps(info, indent=1, default=str))
    return dict(info)


def run_cells_on_ray(
    config: BenchmarkConfig,
    todo: list[Cell],
    root: Path,
    workers: int,
    threads: int,
    limit_s: float,
    finish: Callable[[Cell, dict[str, Any]], None],
    on_event: Callable[[str, Cell, dict[str, Any] | None], None] | None,
    stopped: Callable[[BenchmarkConfig, Cell, Path, str, str], dict[str, Any]],
    address: str | None = None,
) -> dict[str, Any]:
    """Run ``todo`` as Ray tasks, ``workers`` at once; returns what the cluster offered."""
    from healthsynth.scale._ray import cluster_summary, ray_session

    with ray_session(address=address, workers=workers, purpose="benchmark --engine ray") as ray:
        summary = cluster_summary(ray)
        task = ray.remote(num_cpus=1, max_retries=0, max_calls=1)(_cell_task)
        queue = list(todo)
        running: dict[Any, tuple[Cell, float]] = {}
        cancelled: list[Any] = []
        try:
            while queue or running:
                while queue and len(running) < workers:
                    cell = queue.pop(0)
                    running[task.remote(config, cell, threads)] = (cell, time.monotonic() + limit_s)
                    if on_event:
                        on_event("start", cell, None)
                ready, _ = ray.wait(list(running), num_returns=1, timeout=0.5)
                for ref in ready:
                    cell, _ = running.pop(ref)
                    finish(cell, _collect(ray, ref, config, cell, root, stopped))
                now = time.monotonic()
                for ref, (cell, deadline) in list(running.items()):
                    if now > deadline:
                        ray.cancel(ref, force=True)
                        cancelled.append(ref)
                        del running[ref]
                        info = stopped(
                            config,
                            cell,
                            root,
                            "timeout",
                            f"stopped after the time budget of {config.time_budget_per_cell_s:g}"
                            " s per cell (time_budget_per_cell_s)",
                        )
                        finish(cell, info)
        finally:
            for ref in running:
                ray.cancel(ref, force=True)
                cancelled.append(ref)
            _sweep_after(ray, cancelled)
    return summary


def _sweep_after(ray: Any, cancelled: list[Any]) -> None:
    """Wait (a few seconds at most) for cancelled cells' workers to end, then sweep this node."""
    if cancelled:
        ray.wait(cancelled, num_returns=len(cancelled), timeout=5.0)
        time.sleep(0.5)  # the worker process exits after its task is marked cancelled
    sweep_orphans()


def _collect(
    ray: Any,
    ref: Any,
    config: BenchmarkConfig,
    cell: Cell,
    root: Path,
    stopped: Callable[[BenchmarkConfig, Cell, Path, str, str], dict[str, Any]],
) -> dict[str, Any]:
    try:
        files = ray.get(ref)
    except ray.exceptions.RayError as e:
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        return stopped(
            config,
            cell,
            root,
            "failed",
            f"the cell's Ray worker ended before writing its result ({first.rstrip('.')}); "
            "run again with --retry-failed",
        )
    return _write_cell_files(root / cell.folder, files)
