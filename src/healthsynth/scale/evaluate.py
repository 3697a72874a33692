"""Distributed evaluation of a large synthetic table kept as Parquet shards.

:func:`evaluate_shards` scores ``synthetic`` (a folder of Parquet shards, Parquet files, or one
CSV file) against in-memory real and holdout tables, and returns the same plain result as
:func:`healthsynth.evaluate` (so ``write_report`` renders it), with ``meta["scale"]`` saying
what covered which rows:

* the per-row and per-block metrics (:data:`~healthsynth.scale._partials.DISTRIBUTED`:
  column distance, DCR queries, TSTR scoring, rule violations) run over **every** synthetic
  row: the input is cut into read units (Parquet row groups, joined up to ``block_rows``), a
  Ray Data pipeline scores the units on ``workers`` CPUs and the driver adds the partial
  results up (see :mod:`healthsynth.scale._partials` for what is exact and what is per block);
* every other metric runs once, in this process, on a seeded subsample of ``subsample`` rows
  (positions drawn uniformly from the whole input), exactly as ``healthsynth.evaluate`` would
  on that subsample; each of their records says so (``details["synthetic_rows_used"]``).

``engine="local"`` scores the same units one after the other in this process: the same
numbers, without Ray.
"""

from __future__ import annotations

import pickle
import time
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from healthsynth.data import Schema
from healthsynth.errors import DataFileError, ParameterError
from healthsynth.scale._partials import (
    DISTRIBUTED,
    State,
    build_state,
    merge,
    records,
    reference,
    score_block,
)
from healthsynth.scale._ray import check_engine, check_workers
from healthsynth.scale._units import (
    BLOCK_ROWS,
    _read_unit,
    _subsample,
    _Unit,
    _units,
    synthetic_files,
)

__all__ = ["evaluate_shards", "synthetic_files"]


def evaluate_shards(
    *,
    real: pd.DataFrame,
    synthetic: str | Path | Sequence[str | Path],
    holdout: pd.DataFrame | None = None,
    schema: Schema | None = None,
    target: str | None = None,
    sensitive: Iterable[str] | None = None,
    rules: Any = None,
    training: Mapping[str, Any] | None = None,
    sampling: Mapping[str, Any] | None = None,
    metrics: Sequence[str] | None = None,
    seed: int = 0,
    engine: str = "ray",
    workers: int = 2,
    address: str | None = None,
    subsample: int = 100_000,
    closer_rows: int = 100_000,
    dcr_rows: int | None = 100_000,
    block_rows: int = BLOCK_ROWS,
    sources: Mapping[str, str] | None = None,
) -> dict[str, Any]:
    """Score a large synthetic table on disk against real rows; see the module docstring.

    Parameters
    ----------
    real, holdout, schema, target, sensitive, rules, training, sampling, metrics, seed, sources
        As for :func:`healthsynth.evaluate`.
    synthetic
        A folder of Parquet shards (``sample --engine ray``), Parquet files, or one CSV file.
    engine
        ``ray`` (a Ray Data pipeline on ``workers`` CPUs) or ``local`` (this process).
    workers
        CPUs scoring blocks at once (``engine="ray"``).
    address
        The Ray cluster to join (see :func:`healthsynth.scale.sample`).
    subsample
        Synthetic rows the other metrics see (drawn with ``seed``).
    closer_rows
        Synthetic rows the closer-to-train share is measured on (spread over the blocks).
    dcr_rows
        Synthetic rows whose distance to the closest record is queried (a seeded share of
        each block): these exact nearest-neighbour queries are the costliest part of a large
        evaluation. ``None`` queries every row. Exact copies are counted on every row either
        way; the single-process metric queries 5,000 rows.
    block_rows
        Rows per block (Parquet row groups are joined up to this many).

    Returns
    -------
    dict
        As :func:`healthsynth.evaluate` returns, plus ``meta["scale"]``.
    """
    from healthsynth.evaluate._evaluate import _describe
    from healthsynth.evaluate._prepare import prepare
    from healthsynth.evaluate._registry import registry
    from healthsynth.evaluate._runner import result

    engine = check_engine(engine)
    if engine == "ray":
        check_workers(workers)
    _check_rows(
        subsample=subsample, closer_rows=closer_rows, dcr_rows=dcr_rows, block_rows=block_rows
    )
    start = time.perf_counter()
    names = registry.resolve(metrics, kind="table")
    files = synthetic_files(synthetic)
    units = _units(files, block_rows)
    total = sum(u.rows for u in units)
    if total == 0:
        raise DataFileError(f"the synthetic files ({files[0]} …) hold no rows; nothing to evaluate")
    sub = _subsample(units, total, subsample, seed)
    prep = prepare(
        real=real, synthetic=sub, holdout=holdout, schema=schema, target=target, sensitive=sensitive
    )
    distributed = tuple(n for n in names if n in DISTRIBUTED)
    others = [n for n in names if n not in DISTRIBUTED]
    timing: dict[str, float] = {}

    context = _context(prep, seed=seed, rules=rules, training=training, sampling=sampling)
    state = _state(prep, distributed, seed, rules, total, closer_rows, dcr_rows, timing)
    t0 = time.perf_counter()
    run = _score(units, state, others, context, engine, workers, address)
    timing["scoring_seconds"] = round(time.perf_counter() - t0, 3)
    timing.update(run["timing"])
    sub_records, glossary = run["subsample"]
    for r in sub_records:
        r.details = {**r.details, "synthetic_rows_used": len(sub), "synthetic_rows_total": total}
    by_metric: dict[str, list[Any]] = {}
    if distributed:
        by_metric = _all_rows_records(run, state, prep, timing, glossary, registry)
    ordered = _in_order(names, distributed, by_metric, sub_records, others, registry)
    sources = dict(sources or {})
    syn_desc = _describe(prep.synthetic, sources.get("synthetic")) or {}
    syn_desc["rows"] = total
    return result(
        ordered,
        glossary,
        kind="table",
        start=start,
        seed=seed,
        training=training,
        warnings=prep.warnings,
        real=_describe(prep.real, sources.get("real")),
        synthetic=syn_desc,
        holdout=_describe(prep.holdout, sources.get("holdout")),
        examples=None,
        target=prep.schema.target,
        sensitive=prep.schema.sensitive,
        schema=prep.schema.to_dict(),
        rules=rules.to_dict() if rules is not None and hasattr(rules, "to_dict") else None,
        scale={
            "engine": engine,
            "workers": workers if engine == "ray" else 1,
            "synthetic_rows": total,
            "blocks": len(units),
            "block_rows": block_rows,
            "all_rows_metrics": list(distributed),
            "subsample_metrics": others,
            "subsample_rows": len(sub),
            "closer_rows": min(closer_rows, total),
            "dcr_rows": total if dcr_rows is None else min(dcr_rows, total),
            **timing,
        },
    )


def _check_rows(*, subsample: int, closer_rows: int, dcr_rows: int | None, block_rows: int) -> None:
    """Refuse a row count that is not a positive whole number (``dcr_rows`` may be None)."""
    for name, value in (
        ("subsample", subsample),
        ("closer_rows", closer_rows),
        ("dcr_rows", 1 if dcr_rows is None else dcr_rows),
        ("block_rows", block_rows),
    ):
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ParameterError(f"{name} must be a positive whole number of rows; got {value!r}")


def _context(
    prep: Any,
    *,
    seed: int,
    rules: Any,
    training: Mapping[str, Any] | None,
    sampling: Mapping[str, Any] | None,
) -> dict[str, Any]:
    """What the subsample metrics are run with (as :func:`healthsynth.evaluate` runs them)."""
    from healthsynth.evaluate._prepare import metric_context

    return metric_context(
        prep, seed=seed, rules=rules, training=training, sampling=sampling, examples=None
    )


def _state(
    prep: Any,
    distributed: tuple[str, ...],
    seed: int,
    rules: Any,
    total: int,
    closer_rows: int,
    dcr_rows: int | None,
    timing: dict[str, float],
) -> State:
    """What scoring a block needs (built once; its seconds go in ``timing``)."""
    t0 = time.perf_counter()
    state = build_state(
        real=prep.real,
        holdout=prep.holdout,
        schema=prep.schema,
        metrics=distributed,
        seed=seed,
        rules=rules,
        total_rows=total,
        closer_rows=closer_rows,
        dcr_rows=dcr_rows,
    )
    timing["prepare_seconds"] = round(time.perf_counter() - t0, 3)
    return state


def _all_rows_records(
    run: dict[str, Any],
    state: State,
    prep: Any,
    timing: dict[str, float],
    glossary: dict[str, Any],
    registry: Any,
) -> dict[str, list[Any]]:
    """The distributed metrics' records from the scored blocks (their glossary entries added)."""
    t0 = time.perf_counter()
    by_metric = records(
        merge(run["parts"]),
        state,
        ref=run["reference"],
        real=prep.real,
        holdout=prep.holdout,
        seconds=timing["scoring_seconds"],
    )
    timing["merge_seconds"] = round(time.perf_counter() - t0, 3)
    for name in state.metrics:
        info = registry.info(name)
        for r in by_metric.get(name, []):
            found = info.describe(r.name)
            if found is not None:
                glossary.setdefault(r.name, found)
    return by_metric


def _in_order(
    names: list[str],
    distributed: tuple[str, ...],
    by_metric: dict[str, list[Any]],
    sub_records: list[Any],
    others: list[str],
    registry: Any,
) -> list[Any]:
    """All records, metric by metric in the order ``names`` asks for them."""
    ordered: list[Any] = []
    sub_by_name: dict[str, list[Any]] = {}
    for r in sub_records:
        sub_by_name.setdefault(_metric_of(r.name, others, registry), []).append(r)
    for name in names:
        ordered += by_metric.get(name, []) if name in distributed else sub_by_name.get(name, [])
    return ordered


def _metric_of(record_name: str, candidates: list[str], registry: Any) -> str:
    """The metric (among ``candidates``) that returns records named ``record_name``."""
    for name in candidates:
        if record_name in registry.info(name).record_names:
            return name
    return record_name


# -- scoring the units ------------------------------------------------------------------------
def _score_unit(unit: _Unit, state: State) -> dict[str, Any]:
    df = _read_unit(unit, columns=state.names)
    return score_block(df, state, unit.key)


def _score_batch(batch: dict[str, np.ndarray], state_ref: Any) -> dict[str, np.ndarray]:
    """Ray Data UDF: score the units of one batch (pickled partials out)."""
    import ray

    state = ray.get(state_ref)
    out = []
    for blob in batch["unit"]:
        unit = pickle.loads(blob)
        out.append(pickle.dumps((unit.key, _score_unit(unit, state))))
    return {"partial": np.array(out, dtype=object)}


def _subsample_metrics(names: list[str], context: dict[str, Any]) -> tuple[Any, float]:
    """The other metrics on the subsample (a Ray task, or a call in this process)."""
    from healthsynth.evaluate._runner import run_metrics

    t0 = time.perf_counter()
    return run_metrics(names, context), round(time.perf_counter() - t0, 3)


def _reference(state: State, real: pd.DataFrame, holdout: pd.DataFrame | None) -> Any:
    t0 = time.perf_counter()
    return reference(state, real, holdout), round(time.perf_counter() - t0, 3)


def _score(
    units: list[_Unit],
    state: State,
    others: list[str],
    context: dict[str, Any],
    engine: str,
    workers: int,
    address: str | None,
) -> dict[str, Any]:
    """Score the units, the holdout's side and the subsample metrics (side by side on Ray).

    Returns ``parts``, ``reference``, ``subsample`` and ``timing``.
    """
    real, holdout = context["real"], context["holdout"]
    distributed = bool(state.metrics)
    if engine == "local":
        t0 = time.perf_counter()
        parts = [_score_unit(u, state) for u in units] if distributed else []
        blocks_s = round(time.perf_counter() - t0, 3)
        ref, ref_s = _reference(state, real, holdout) if distributed else ({}, 0.0)
        sub, sub_s = _subsample_metrics(others, context)
        return {
            "parts": parts,
            "reference": ref,
            "subsample": sub,
            "timing": _timing(blocks_s, ref_s, sub_s),
        }
    from healthsynth.errors import EngineError
    from healthsynth.scale._ray import ray_session

    with ray_session(address=address, workers=workers, purpose="--engine ray") as ray:
        ctx = ray.data.DataContext.get_current()
        bars = ctx.enable_progress_bars
        ctx.enable_progress_bars = False
        try:
            state_ref = ray.put(state)
            task = ray.remote(num_cpus=1)
            sub_task = task(_subsample_metrics).remote(others, context)
            ref_task = task(_reference).remote(state_ref, real, holdout) if distributed else None
            t0 = time.perf_counter()
            keyed = _pipeline(ray, units, state_ref, workers) if distributed else []
            blocks_s = round(time.perf_counter() - t0, 3)
            ref, ref_s = ray.get(ref_task) if ref_task is not None else ({}, 0.0)
            sub, sub_s = ray.get(sub_task)
        except ray.exceptions.RayError as e:
            first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
            raise EngineError(f"scoring the synthetic blocks on Ray failed: {first}") from None
        finally:
            ctx.enable_progress_bars = bars
    keyed.sort(key=lambda kv: kv[0])
    return {
        "parts": [part for _, part in keyed],
        "reference": ref,
        "subsample": sub,
        "timing": _timing(blocks_s, ref_s, sub_s),
    }


def _timing(blocks_s: float, ref_s: float, sub_s: float) -> dict[str, float]:
    return {
        "blocks_seconds": blocks_s,
        "reference_seconds": ref_s,
        "subsample_metrics_seconds": sub_s,
    }


def _pipeline(ray: Any, units: list[_Unit], state_ref: Any, workers: int) -> list[Any]:
    """The Ray Data pipeline: one item per unit, scored by a pool of ``workers`` tasks."""
    items = [{"unit": pickle.dumps(u)} for u in units]
    ds = ray.data.from_items(items, override_num_blocks=len(items))
    ds = ds.map_batches(
        _score_batch,
        batch_size=1,
        batch_format="numpy",
        fn_kwargs={"state_ref": state_ref},
        compute=ray.data.TaskPoolStrategy(size=workers),
        num_cpus=1,
    )
    return [pickle.loads(row["partial"]) for row in ds.iter_rows()]
