"""Running a benchmark: cells in worker processes, resumable, with a time limit per cell."""

from __future__ import annotations

import json
import multiprocessing as mp
import os
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from healthsynth.benchmark._cells import (
    Cell,
    cell_identity,
    frame_and_schema,
    plan,
    run_cell,
    training_pool,
    write_cell,
)
from healthsynth.benchmark._config import BenchmarkConfig
from healthsynth.errors import ParameterError
from healthsynth.generators._base import warn

__all__ = ["BenchmarkRun", "run_benchmark"]

#: seconds a cell may run past its budget (process start, writing files) before it is stopped
_GRACE_S = 30.0


@dataclass
class BenchmarkRun:
    """What a call to :func:`run_benchmark` did."""

    out_dir: Path
    cells: int
    ran: int
    skipped: int
    status: dict[str, int] = field(default_factory=dict)
    seconds: float = 0.0
    files: dict[str, Path] = field(default_factory=dict)


def _done(root: Path, cell: Cell, config: BenchmarkConfig, retry_failed: bool) -> bool:
    path = root / cell.folder / "cell.json"
    if not path.is_file():
        return False
    try:
        info = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    if info.get("hash") != config.cell_hash(cell.dataset, cell.method, cell.size, cell.seed):
        return False  # the config changed for this cell: run it again
    return not (retry_failed and info.get("status") != "ok")


def _child(
    config: BenchmarkConfig,
    cell: Cell,
    root: Path,
    threads: int,
    environ: dict[str, str] | None = None,
) -> None:
    import os
    import sys

    if environ is not None:
        # a forkserver child inherits the environment of when the server started; a cell
        # must see the parent's as it is now (an API key set since, say)
        os.environ.clear()
        os.environ.update(environ)
    code = 0
    try:
        run_cell(config, cell, root, threads=threads)
    except BaseException:  # noqa: BLE001 - run_cell records failures; this is a last resort
        code = 1
    sys.stdout.flush()
    sys.stderr.flush()
    # the result is on disk: skip the interpreter's teardown (seconds with torch loaded)
    os._exit(code)


def _stopped(config: BenchmarkConfig, cell: Cell, root: Path, status: str, error: str) -> dict:
    info = {**cell_identity(config, cell), "status": status, "error": error}
    write_cell(root / cell.folder, "records.json", [])
    write_cell(root / cell.folder, "cell.json", info)
    return info


def run_benchmark(
    config: BenchmarkConfig,
    out_dir: str | Path,
    *,
    workers: int | None = None,
    retry_failed: bool = False,
    on_event: Callable[[str, Cell, dict[str, Any] | None], None] | None = None,
    isolate: bool = True,
    engine: str = "local",
    ray_address: str | None = None,
) -> BenchmarkRun:
    """Run every cell of ``config`` not already done in ``out_dir``, then write the summary.

    Parameters
    ----------
    config
        A checked configuration (:func:`~healthsynth.benchmark.load_config`).
    out_dir
        The output folder; a folder from an earlier (killed) run is resumed: finished cells
        whose settings are unchanged are kept.
    workers
        Cells run at once, each in its own process (default: the config's ``workers``).
    retry_failed
        Run failed and timed-out cells again instead of keeping their record.
    on_event
        Called with ``("skip", cell, None)`` for each cell already done, then
        ``("start", cell, None)`` and ``("end", cell, cell_info)`` (progress).
    isolate
        Run each cell in a child process with the time limit enforced (default). ``False`` runs
        cells in this process without a limit (for debugging).
    engine
        ``local`` (child processes of this one) or ``ray``: each cell is a Ray task on the
        cluster at ``ray_address`` (default: a local Ray instance), ``workers`` at once, with
        the same cell folders and time limit (see :mod:`healthsynth.benchmark._ray`).
    ray_address
        The Ray cluster to join (``HOST:PORT``, ``ray://HOST:PORT`` or ``auto``).
    """
    from healthsynth.benchmark._summary import write_summary
    from healthsynth.data._io import atomic_write_text
    from healthsynth.scale._ray import check_engine, import_ray

    started = time.perf_counter()
    workers = workers or config.workers
    if workers < 1:
        raise ParameterError(f"workers must be at least 1; got {workers}")
    engine = check_engine(engine)
    if engine == "ray":
        import_ray("benchmark --engine ray")
    elif ray_address is not None:
        raise ParameterError("ray_address applies to engine='ray'")
    root = Path(out_dir)
    cells_root = root / "cells"
    # every dataset is loaded and checked before any cell runs (and before anything is written)
    rows = _training_rows_checked(config)
    root.mkdir(parents=True, exist_ok=True)
    atomic_write_text(root / "config.json", json.dumps(config.to_dict(), indent=1))
    cells = plan(config, rows)
    todo = [c for c in cells if not _done(cells_root, c, config, retry_failed)]
    if on_event:
        for c in cells:
            if c not in todo:
                on_event("skip", c, None)
    status: dict[str, int] = {}
    # one thread per cell: the cells' models are small, and OpenMP threads that outnumber the
    # free cores slow scikit-learn down many times over; use --workers for parallelism
    threads = 1

    def finish(cell: Cell, info: dict[str, Any]) -> None:
        status[info.get("status", "failed")] = status.get(info.get("status", "failed"), 0) + 1
        if on_event:
            on_event("end", cell, info)

    if engine == "ray":
        from healthsynth.benchmark._ray import run_cells_on_ray

        limit = config.time_budget_per_cell_s + _GRACE_S
        run_cells_on_ray(
            config,
            todo,
            cells_root,
            workers,
            threads,
            limit,
            finish,
            on_event,
            _stopped,
            address=ray_address,
        )
    elif not isolate:
        for cell in todo:
            if on_event:
                on_event("start", cell, None)
            finish(cell, run_cell(config, cell, cells_root, threads=threads, redirect=False))
    else:
        _run_isolated(config, todo, cells_root, workers, threads, finish, on_event)
    files = write_summary(root, config, cells)
    return BenchmarkRun(
        out_dir=root,
        cells=len(cells),
        ran=len(todo),
        skipped=len(cells) - len(todo),
        status=status,
        seconds=round(time.perf_counter() - started, 1),
        files=files,
    )


def _training_rows_checked(config: BenchmarkConfig) -> dict[str, int]:
    """Load every dataset, warn about sizes beyond its training rows, return those rows."""
    rows: dict[str, int] = {}
    for d in config.datasets:
        frame_and_schema(d, config.source)
        rows[d.name] = n_train = len(training_pool(d, 0, config.source)[0])
        too_big = [s for s in config.train_sizes if s != "all" and int(s) > n_train]
        if too_big and "all" in config.train_sizes:
            warn(
                f"training size{'s' if len(too_big) > 1 else ''} "
                f"{', '.join(str(s) for s in too_big)} {'are' if len(too_big) > 1 else 'is'} "
                f"larger than the {n_train} training rows of dataset '{d.name}'; "
                "those cells are left out, since size 'all' trains on the same rows"
            )
        elif too_big:
            warn(
                f"training size {too_big[0]} is larger than the {n_train} training rows of "
                f"dataset '{d.name}'; its cells are capped at {n_train} rows"
                + (
                    f" and the larger sizes ({', '.join(str(s) for s in too_big[1:])}) left out"
                    if len(too_big) > 1
                    else ""
                )
            )
    return rows


def _context() -> Any:
    """How cells are started.

    fork starts a cell in milliseconds with the parent's imports and loaded data, but a child
    forked while another thread holds a lock waits on that lock for ever. So fork is used only
    when this process runs no other Python thread (a server thread in a notebook, say) and has
    not loaded polars, whose thread pool is known not to survive a fork (the anonymeter metrics
    use it; the full test suite once hung so). Otherwise forkserver, else spawn: each cell then
    imports and loads for itself.
    """
    methods = mp.get_all_start_methods()
    if "fork" in methods and threading.active_count() == 1 and "polars" not in sys.modules:
        return mp.get_context("fork")
    return mp.get_context("forkserver" if "forkserver" in methods else "spawn")


def _run_isolated(
    config: BenchmarkConfig,
    todo: list[Cell],
    root: Path,
    workers: int,
    threads: int,
    finish: Callable[[Cell, dict[str, Any]], None],
    on_event: Callable[[str, Cell, dict[str, Any] | None], None] | None,
) -> None:
    ctx = _context()
    # import what the cells use once here, so forked children start warm
    from healthsynth import evaluate  # noqa: F401
    from healthsynth.generators import registry

    for m in {c.method.generator for c in todo if not c.method.builtin}:
        try:
            registry.get(m)
        except ImportError:
            pass  # the cell records the error
    limit = config.time_budget_per_cell_s + _GRACE_S
    queue = list(todo)
    running: dict[Any, tuple[Cell, float]] = {}
    try:
        while queue or running:
            while queue and len(running) < workers:
                cell = queue.pop(0)
                env = None if ctx.get_start_method() == "fork" else dict(os.environ)
                proc = ctx.Process(
                    target=_child, args=(config, cell, root, threads, env), daemon=True
                )
                proc.start()
                running[proc] = (cell, time.monotonic() + limit)
                if on_event:
                    on_event("start", cell, None)
            time.sleep(0.1)
            for proc in list(running):
                cell, deadline = running[proc]
                if proc.exitcode is None and time.monotonic() < deadline:
                    continue
                if proc.exitcode is None:
                    proc.kill()
                    proc.join()
                    info = _stopped(
                        config,
                        cell,
                        root,
                        "timeout",
                        f"stopped after the time budget of {config.time_budget_per_cell_s:g} s "
                        "per cell (time_budget_per_cell_s)",
                    )
                else:
                    proc.join()
                    path = root / cell.folder / "cell.json"
                    try:
                        info = json.loads(path.read_text(encoding="utf-8"))
                    except (OSError, ValueError):
                        info = _stopped(
                            config,
                            cell,
                            root,
                            "failed",
                            f"the cell's process ended with exit code {proc.exitcode} before "
                            "writing its result (out of memory?)",
                        )
                del running[proc]
                finish(cell, info)
    finally:
        for proc in running:
            proc.kill()
            proc.join()
