"""Distributed sampling: blocks of rows (or patients) sampled by Ray workers, written in order.

:func:`sample` cuts ``n`` into blocks (:mod:`healthsynth.scale._plan`: a seed per block derived
from the root seed and the block's index), starts ``workers`` Ray actors that each load the
model once (its folder travels through Ray's object store, so worker nodes need no shared file
system), hands them blocks as they free up, and writes what comes back **in block order**
(:mod:`healthsynth.scale._layouts`): the output is byte-for-byte the same for any number of
workers. A table goes to a folder of Parquet shards (``part-00000.parquet`` …, one per block,
plus ``_run.json``, which Parquet readers skip), or to one ``.parquet`` / ``.csv`` file; patients
with timelines go to a folder in any export format (csv, parquet, omop, meds, fhir), laid out
as the local engine lays them out.

A worker that dies mid-run (a killed process, a lost node) loses only the block it held: the
block goes back to the queue and the remaining workers finish the run; when none remain the run
fails with one sentence. Either way nothing is left under the output name unless the whole
output is complete (a temporary name, then a rename; see :mod:`healthsynth.data._outputs`).

``engine="local"`` runs the same blocks in this process, one after the other, with the same
thread settings as a worker (one thread): the same bytes, without Ray.
"""

from __future__ import annotations

import os
import tempfile
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from healthsynth.errors import EngineError, ParameterError
from healthsynth.scale._layouts import TABLE_KIND, TIMELINES_KIND, Writer
from healthsynth.scale._plan import Block, plan_blocks, root_seed
from healthsynth.scale._ray import check_engine, check_workers
from healthsynth.scale._sampler import (
    _BlockSampler,
    _is_timelines,
    _model_files,
    _pinned_threads,
    _sample_block,
    _Spec,
)

__all__ = ["SampleProgress", "SampleRun", "sample"]

#: rows (tables) and patients (timelines) per block by default
TABLE_BLOCK = 50_000
TIMELINE_BLOCK = 5_000
#: the formats of timeline samples
TIMELINE_FORMATS = ("csv", "parquet", "omop", "meds", "fhir")
#: blocks sampled ahead of the next one to write, per worker (bounds the driver's memory)
_AHEAD_PER_WORKER = 4


@dataclass(frozen=True)
class SampleProgress:
    """Where a distributed sample stands (passed to the ``progress`` callback)."""

    blocks_done: int
    blocks: int
    rows_done: int
    rows: int
    workers_alive: int
    worker_pids: tuple[int, ...] = ()


@dataclass
class SampleRun:
    """What :func:`sample` wrote: the output, and the run record written next to it."""

    output: Path
    record: dict[str, Any] = field(default_factory=dict)


# -- the public call --------------------------------------------------------------------------
def sample(
    model: Any,
    n: int,
    output: str | Path,
    *,
    engine: str = "ray",
    workers: int = 2,
    address: str | None = None,
    seed: int | None = None,
    conditions: Mapping[str, Any] | None = None,
    fmt: str | None = None,
    block_size: int | None = None,
    overwrite: bool = False,
    protected: Any = (),
    progress: Callable[[SampleProgress], None] | None = None,
    start_timeout_s: float = 300.0,
    trust_pickle: bool = False,
) -> SampleRun:
    """Sample ``n`` rows (or patients) from a model in blocks, on Ray workers, to ``output``.

    Parameters
    ----------
    model
        A model folder written by ``fit`` / ``Generator.save``, or a fitted generator (saved
        to a temporary folder first).
    n
        Rows to sample (patients, for a timeline model).
    output
        Tables: a folder (Parquet shards, one per block), or one ``.parquet`` / ``.csv`` file.
        Timelines: a folder, in the format ``fmt``.
    engine
        ``ray`` (workers on a Ray cluster) or ``local`` (the same blocks in this process).
    workers
        Ray actors sampling at once (each takes one CPU and one compute thread).
    address
        The Ray cluster to join (``HOST:PORT``, ``ray://HOST:PORT``, ``auto``); without one a
        session already open in this process is used, else a local Ray instance is started.
    seed
        Root seed (a whole number ≥ 0): the same seed gives the same bytes for any number of
        workers. ``None`` draws fresh entropy, recorded as ``seed_entropy`` in the run record.
    conditions
        Fixed or bounded values, as for ``Generator.sample`` (``has`` for timelines).
    fmt
        Timelines only: ``csv`` (default), ``parquet``, ``omop``, ``meds`` or ``fhir``.
    block_size
        Rows (patients) per block: 50,000 rows or 5,000 patients by default.
    overwrite
        Replace an existing output *file* that healthsynth did not write (never a protected
        one; folders are replaced only when healthsynth wrote them).
    protected
        Files that must never be written over (the model's, the real data).
    progress
        Called after each block is written.
    start_timeout_s
        Seconds to wait for the workers to start (placed on the cluster, model loaded).
    trust_pickle
        Load a model folder that holds a pickle (``ctgan``, ``tvae``, ``gaussian-copula``):
        unpickling runs the code it carries, so only for folders you trust. A fitted generator
        passed in is your own and is always loaded.

    Returns
    -------
    SampleRun
        The output path and the run record (also written: ``_run.json`` inside a folder of
        table shards, ``run.json`` inside a timelines folder, ``OUTPUT.run.json`` beside a file).

    Raises
    ------
    ParameterError
        A bad ``n``, ``workers``, ``engine``, ``seed``, ``fmt``, ``block_size`` or output.
    MissingExtraError
        ``engine="ray"`` without Ray (the ``ray`` extra), or MEDS / FHIR without their extra.
    EngineError
        An unreachable cluster, workers that never started, or every worker lost mid-run.
    """
    from healthsynth.generators import Generator

    engine = check_engine(engine)
    if engine == "ray":
        check_workers(workers)
    n = Generator._check_n(n)
    root = root_seed(seed)
    files, meta = _model_files(model)
    trust_pickle = trust_pickle or not isinstance(model, (str, Path))
    timelines = _is_timelines(meta)
    if engine == "ray" and meta.get("generator") == "prompted-llm":
        raise ParameterError(
            "prompted-llm samples through an LLM endpoint under one token budget that one "
            "process enforces; sample it with --engine local"
        )
    output = Path(output)
    out_fmt = _output_format(output, fmt, timelines)
    size = block_size if block_size is not None else (TIMELINE_BLOCK if timelines else TABLE_BLOCK)
    blocks = plan_blocks(n, size, root)
    spec = _Spec(
        fmt=out_fmt,
        timelines=timelines,
        conditions=dict(conditions) if conditions else None,
        threads=1,
        trust_pickle=trust_pickle,
    )
    record: dict[str, Any] = {
        "command": "sample",
        "model": str(model) if isinstance(model, (str, Path)) else type(model).__name__,
        "n": n,
        "unit": "patients" if timelines else "rows",
        "format": out_fmt,
        "conditions": spec.conditions or {},
        "seed": seed,
        "seed_entropy": root,
        "engine": engine,
        "workers": workers if engine == "ray" else 1,
        "ray_address": address,
        "block_size": size,
        "blocks": len(blocks),
        "seed_derivation": "numpy.random.SeedSequence(entropy=seed_entropy, spawn_key=(block,))",
    }
    run = _Run(files, spec, blocks, record, progress)
    if out_fmt in ("table-parquet", "table-csv"):
        return _to_file(
            run, output, (engine, workers, address, start_timeout_s), protected, overwrite
        )
    return _to_folder(run, output, (engine, workers, address, start_timeout_s), protected)


def _output_format(output: Path, fmt: str | None, timelines: bool) -> str:
    if timelines:
        fmt = fmt or "csv"
        if fmt not in TIMELINE_FORMATS:
            raise ParameterError(f"--format '{fmt}' is not one of {', '.join(TIMELINE_FORMATS)}")
        if fmt in ("meds", "fhir"):
            from healthsynth.data._export import optional_module

            module = "meds" if fmt == "meds" else "fhir.resources"
            optional_module(module, module, f"Writing {fmt.upper()}")
        return fmt
    if fmt is not None:
        raise ParameterError(
            "--format applies to timeline models; for a table the output's suffix sets the "
            "format (.parquet or .csv: one file; no suffix: a folder of Parquet shards)"
        )
    suffix = output.suffix.lower()
    if suffix in (".parquet", ".pq"):
        return "table-parquet"
    if suffix == ".csv":
        return "table-csv"
    if suffix and not output.is_dir():
        raise ParameterError(
            f"output {output} ends in '{suffix}': give a .parquet or .csv file, or a folder "
            "name (no suffix) for Parquet shards"
        )
    return "shards"


@dataclass
class _Run:
    files: dict[str, bytes]
    spec: _Spec
    blocks: list[Block]
    record: dict[str, Any]
    progress: Callable[[SampleProgress], None] | None
    block_stats: list[dict[str, Any]] = field(default_factory=list)
    workers_lost: int = 0


def _to_folder(run: _Run, output: Path, where: tuple, protected: Any) -> SampleRun:
    from healthsynth.data import atomic_folder, check_output_folder

    kind = TIMELINES_KIND if run.spec.timelines else TABLE_KIND
    action = "write the synthetic patients" if run.spec.timelines else "write the synthetic rows"
    check_output_folder(output, action=action, protected=protected, kind=kind)
    started = time.perf_counter()
    with atomic_folder(output, action=action, kind=kind, protected=protected) as tmp:
        writer = Writer(tmp, fmt=run.spec.fmt)
        _execute(run, writer, *where)
        _finish_record(run, started, output, tmp)
        name = "run.json" if run.spec.timelines else "_run.json"
        _write_json(tmp / name, run.record)
    return SampleRun(output=output, record=run.record)


def _to_file(run: _Run, output: Path, where: tuple, protected: Any, overwrite: bool) -> SampleRun:
    from healthsynth.data import atomic_path, check_output_file

    check_output_file(
        output, action="write the synthetic rows", protected=protected, overwrite=overwrite
    )
    started = time.perf_counter()
    with atomic_path(output) as tmp:
        writer = Writer(tmp, fmt=run.spec.fmt)
        _execute(run, writer, *where)
        _finish_record(run, started, output, None)
        run.record["output_bytes"] = tmp.stat().st_size
    run_path = output.with_name(output.name + ".run.json")
    with atomic_path(run_path) as tmp:
        _write_json(tmp, run.record)
    return SampleRun(output=output, record=run.record)


def _write_json(path: Path, data: Any) -> None:
    import json

    path.write_text(json.dumps(data, indent=1, default=str), encoding="utf-8")


def _finish_record(run: _Run, started: float, output: Path, folder: Path | None) -> None:
    from healthsynth.generators._folder import peak_rss_mb, runtime_info

    took = time.perf_counter() - started
    seconds = [b["seconds"] for b in run.block_stats]
    cpu = [b["cpu_seconds"] for b in run.block_stats]
    n = run.record["n"]
    run.record.update(
        output=str(output),
        seconds=round(took, 3),
        rows_per_second=round(n / max(took, 1e-9), 1),
        workers_lost=run.workers_lost,
        block_seconds={
            "mean": round(sum(seconds) / len(seconds), 4) if seconds else None,
            "min": round(min(seconds), 4) if seconds else None,
            "max": round(max(seconds), 4) if seconds else None,
            "sum": round(sum(seconds), 3),
        },
        # CPU seconds of the sampling process per block: what a block costs whatever else runs
        block_cpu_seconds={
            "mean": round(sum(cpu) / len(cpu), 4) if cpu else None,
            "sum": round(sum(cpu), 3),
        },
        per_block=run.block_stats,
        peak_rss_mb_driver=peak_rss_mb(),
        runtime=runtime_info(),
    )
    if folder is not None:
        files = [p for p in folder.rglob("*") if p.is_file()]
        run.record["output_files"] = len(files)
        run.record["output_bytes"] = sum(p.stat().st_size for p in files)


# -- running the blocks -----------------------------------------------------------------------
def _execute(
    run: _Run, writer: Writer, engine: str, workers: int, address: str | None, timeout: float
) -> None:
    try:
        if engine == "local":
            _execute_local(run, writer)
        else:
            _execute_ray(run, writer, workers, address, timeout)
        writer.close()
    except BaseException:
        writer.abort()
        raise


def _report(run: _Run, done: int, alive: int, pids: tuple[int, ...]) -> None:
    if run.progress is None:
        return
    rows_done = sum(b.size for b in run.blocks[:done])
    run.progress(
        SampleProgress(
            blocks_done=done,
            blocks=len(run.blocks),
            rows_done=rows_done,
            rows=run.record["n"],
            workers_alive=alive,
            worker_pids=pids,
        )
    )


def _execute_local(run: _Run, writer: Writer) -> None:
    from healthsynth.generators import load_generator

    with tempfile.TemporaryDirectory(prefix="healthsynth-model-") as tmp:
        root = Path(tmp)
        for name, data in run.files.items():
            (root / name).parent.mkdir(parents=True, exist_ok=True)
            (root / name).write_bytes(data)
        # pinned before loading (a generator may read the setting then) and again after (torch
        # may only be loaded by the model)
        with _pinned_threads(run.spec.threads, restore=True):
            model = load_generator(root, trust_pickle=run.spec.trust_pickle)
            with _pinned_threads(run.spec.threads, restore=True):
                for block in run.blocks:
                    start, cpu = time.perf_counter(), time.process_time()
                    files = _sample_block(model, run.spec, block)
                    took = time.perf_counter() - start
                    cpu = time.process_time() - cpu
                    writer.add(block.index, files)
                    run.block_stats.append(_stat(block, took, cpu, os.getpid()))
                    _report(run, block.index + 1, 1, (os.getpid(),))


def _stat(block: Block, seconds: float, cpu_seconds: float, pid: int) -> dict[str, Any]:
    return {
        "block": block.index,
        "rows": block.size,
        "seconds": round(seconds, 4),
        "cpu_seconds": round(cpu_seconds, 4),
        "pid": pid,
    }


def _execute_ray(
    run: _Run, writer: Writer, workers: int, address: str | None, timeout: float
) -> None:
    from healthsynth.scale._ray import cluster_summary, ray_session, start_workers

    started = time.perf_counter()
    with ray_session(address=address, workers=workers) as ray:
        run.record["cluster"] = cluster_summary(ray)
        actor_class = ray.remote(num_cpus=1, max_restarts=0)(_BlockSampler)
        files_ref = ray.put(run.files)
        actors = start_workers(
            ray,
            actor_class,
            workers,
            args=(files_ref, run.spec),
            timeout_s=timeout,
            what="sampling worker",
        )
        try:
            pids = ray.get([a.ping.remote() for a in actors])
            run.record["worker_pids"] = pids
            # Ray itself and the workers (processes started, model loaded), before any block
            run.record["startup_seconds"] = round(time.perf_counter() - started, 3)
            begun = time.perf_counter()
            _dispatch(ray, run, writer, actors, pids)
            run.record["blocks_seconds"] = round(time.perf_counter() - begun, 3)
        finally:
            for actor in actors:
                ray.kill(actor)


def _dispatch(ray: Any, run: _Run, writer: Writer, actors: list[Any], pids: list[int]) -> None:
    """Hand blocks to free workers; write results in block order; survive lost workers."""
    from healthsynth.scale._ray import unwrap

    pending = list(run.blocks)  # sorted by index
    inflight: dict[Any, tuple[Any, Block]] = {}
    idle = list(actors)
    alive = set(range(len(actors)))
    position = {id(a): i for i, a in enumerate(actors)}
    finished: dict[int, dict[str, Any]] = {}
    next_index = 0
    ahead = _AHEAD_PER_WORKER * len(actors)
    while next_index < len(run.blocks):
        while pending and idle and pending[0].index < next_index + ahead:
            actor, block = idle.pop(0), pending.pop(0)
            inflight[actor.sample_block.remote(block)] = (actor, block)
        ready, _ = ray.wait(list(inflight), num_returns=1)
        for ref in ready:
            actor, block = inflight.pop(ref)
            try:
                result = unwrap(ray, ref, what=f"sampling block {block.index}")
            except ray.exceptions.RayActorError:
                alive.discard(position[id(actor)])
                run.workers_lost += 1
                pending = sorted([*pending, block], key=lambda b: b.index)
                if not alive:
                    raise EngineError(
                        f"all {len(actors)} sampling workers died (the last while sampling "
                        f"block {block.index}); {next_index} of {len(run.blocks)} blocks were "
                        "done and nothing was written to the output; check the workers' "
                        "memory and logs, then run again"
                    ) from None
                continue
            idle.append(actor)
            stat = _stat(block, result["seconds"], result["cpu_seconds"], result["pid"])
            run.block_stats.append(stat)
            finished[block.index] = result["files"]
            while next_index in finished:
                writer.add(next_index, finished.pop(next_index))
                next_index += 1
                _report(run, next_index, len(alive), tuple(pids[i] for i in sorted(alive)))
    run.block_stats.sort(key=lambda s: s["block"])
