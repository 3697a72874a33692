"""Scoring synthetic patient timelines.

The datasets are checked and prepared (:class:`Timelines`), then the timeline metrics run
through the one runner of :mod:`healthsynth.evaluate._runner`.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from typing import Any

from healthsynth.data import Dataset
from healthsynth.errors import ParameterError
from healthsynth.evaluate._registry import registry
from healthsynth.evaluate._runner import result, run_metrics
from healthsynth.evaluate.timeline._prepare import Timelines

__all__ = ["TIMELINE_METRICS", "evaluate_timelines"]

#: name -> module of every timeline metric (a live view of the registry's timeline metrics)
TIMELINE_METRICS = registry.mapping("timelines")


def _check_datasets(real: Any, synthetic: Any, holdout: Any) -> list[str]:
    warnings = []
    for role, ds in (("real", real), ("synthetic", synthetic), ("holdout", holdout)):
        if ds is None and role == "holdout":
            continue
        if not isinstance(ds, Dataset):
            raise ParameterError(
                f"{role} must be a healthsynth.data.Dataset (see Dataset.from_tables); got "
                f"{type(ds).__name__}"
            )
        if ds is real:
            continue
        if ds.times_are_dates != real.times_are_dates:
            kind = {True: "calendar dates", False: "numbers of days"}
            raise ParameterError(
                f"the {role} event times are {kind[ds.times_are_dates]} but the real ones are "
                f"{kind[real.times_are_dates]}; use one kind of time for both"
            )
        missing = [t for t in real.event_tables if t not in ds.event_tables]
        extra = [t for t in ds.event_tables if t not in real.event_tables]
        if missing:
            warnings.append(f"the {role} data lack the event table(s) {', '.join(missing)}")
        if extra:
            warnings.append(
                f"the {role} data have event table(s) the real data lack: {', '.join(extra)}"
            )
    return warnings


def _describe(tl: Timelines | None, source: str | None) -> dict[str, Any] | None:
    if tl is None:
        return None
    return {
        "rows": tl.n_patients_total,
        "columns": int(tl.patients.shape[1]),
        "source": source,
        **tl.sizes(),
        "tables": tl.dataset.event_tables,
    }


def evaluate_timelines(
    *,
    real: Dataset,
    synthetic: Dataset,
    holdout: Dataset | None = None,
    code_map: Any = None,
    metrics: Sequence[str] | None = None,
    seed: int = 0,
    training: Mapping[str, Any] | None = None,
    sampling: Mapping[str, Any] | None = None,
    sources: Mapping[str, str] | None = None,
    task: Mapping[str, Any] | None = None,
    max_patients: int = 10_000,
) -> dict[str, Any]:
    """Score synthetic patient timelines against the real training patients and a holdout.

    Parameters
    ----------
    real
        The patients the generator was trained on (a :class:`~healthsynth.data.Dataset`).
    synthetic
        The generated patients, with the same tables, key, time and layouts.
    holdout
        Real patients the generator never saw. Scored as if they were synthetic, they give each
        metric its reference; without them, metrics that need fresh patients say they cannot
        apply.
    code_map
        A :class:`~healthsynth.knowledge.CodeMap`, a packaged mapping's name (``"nafld"``) or
        a mapping CSV, for the sex, age-band and value-range checks of
        ``timeline_violations``.
    metrics
        Names of the metrics to run (default: every timeline metric of
        :data:`~healthsynth.evaluate.registry`, in its order).
    seed
        Seed of every subsample, bootstrap and model inside the metrics.
    training, sampling
        The model's training record and the sampling run record, for ``timeline_cost``.
    sources
        How to name the datasets in the report (e.g. folders), by ``real``/``synthetic``/
        ``holdout``.
    task
        The ``timeline_tstr`` prediction task, e.g. ``{"item": "diabetes", "horizon_days":
        730}`` (chosen from the data when not given).
    max_patients
        Each dataset is cut to at most this many patients (a seeded subsample, recorded in
        ``meta``) before any metric runs.

    Returns
    -------
    dict
        Plain JSON-serializable data in the shape :func:`healthsynth.evaluate.evaluate`
        returns: ``records`` (one dict per :class:`~healthsynth.evaluate.MetricRecord`),
        ``seconds`` and ``meta`` (with a ``glossary`` of the record names).

    Raises
    ------
    ParameterError
        For an unknown metric name or a table metric, an input that is not a Dataset, times
        of different kinds, or an invalid ``task``.
    """
    names = registry.resolve(metrics, kind="timelines")
    warnings = _check_datasets(real, synthetic, holdout)
    if isinstance(max_patients, bool) or not isinstance(max_patients, int) or max_patients < 2:
        raise ParameterError(f"max_patients must be an integer of at least 2; got {max_patients!r}")
    start = time.perf_counter()
    from healthsynth.evaluate.timeline.violations import as_code_map

    cmap = as_code_map(code_map)
    r = Timelines(real, max_patients=max_patients, seed=seed)
    s = Timelines(synthetic, max_patients=max_patients, seed=seed)
    h = Timelines(holdout, max_patients=max_patients, seed=seed) if holdout is not None else None
    if "timeline_tstr" in names and task is not None:
        from healthsynth.evaluate.timeline.tstr import check_task

        check_task(task, r)
    for role, tl in (("real", r), ("synthetic", s), ("holdout", h)):
        if tl is not None and tl.subsampled:
            warnings.append(
                f"the {role} data were cut to {tl.n:,} of {tl.n_patients_total:,} patients "
                f"(max_patients={max_patients}, seed={seed})"
            )
    context = {
        "real": r,
        "synthetic": s,
        "holdout": h,
        "seed": seed,
        "code_map": cmap,
        "task": task,
        "training": dict(training) if training else None,
        "sampling": dict(sampling) if sampling else None,
    }
    records, glossary = run_metrics(names, context)
    sources = dict(sources or {})
    return result(
        records,
        glossary,
        kind="timelines",
        start=start,
        seed=seed,
        training=training,
        warnings=warnings,
        real=_describe(r, sources.get("real")),
        synthetic=_describe(s, sources.get("synthetic")),
        holdout=_describe(h, sources.get("holdout")),
        roles=real.roles(),
        code_map=getattr(cmap, "name", None),
        task=dict(task) if task is not None else None,
        max_patients=max_patients,
    )
