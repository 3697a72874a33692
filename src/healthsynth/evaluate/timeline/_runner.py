"""Running the timeline metrics over one synthetic multi-table dataset."""

from __future__ import annotations

import importlib
import inspect
import time
from collections.abc import Mapping, Sequence
from datetime import datetime, timezone
from typing import Any

from healthsynth.data import Dataset
from healthsynth.errors import ParameterError
from healthsynth.evaluate._base import MetricRecord, _plain
from healthsynth.evaluate._runner import _model_summary, _versions
from healthsynth.evaluate.timeline._prepare import Timelines

__all__ = ["TIMELINE_METRICS", "evaluate_timelines"]

_PKG = "healthsynth.evaluate.timeline"

#: name -> module whose ``compute`` implements the timeline metric, imported on first use
TIMELINE_METRICS: dict[str, str] = {
    "event_prevalence_r2": f"{_PKG}.prevalence",
    "cooccurrence_r2": f"{_PKG}.cooccurrence",
    "events_per_patient": f"{_PKG}.events_per_patient",
    "time_between_events": f"{_PKG}.time_between",
    "event_order": f"{_PKG}.event_order",
    "lab_trajectories": f"{_PKG}.lab_trajectories",
    "timeline_tstr": f"{_PKG}.tstr",
    "timeline_dcr": f"{_PKG}.dcr",
    "timeline_violations": f"{_PKG}.violations",
    "timeline_cost": f"{_PKG}.cost",
}

#: one line per record name, for the report's glossary (``meta["glossary"]``)
GLOSSARY: dict[str, str] = {
    "event_prevalence_r2": "R² of the share of patients with each item, synthetic against "
    "real (HALO); 1 = identical shares.",
    "cooccurrence_r2": "R² of the share of patients with both items of each pair of coded "
    "events, synthetic against real (HALO); 1 = identical.",
    "events_per_patient": "Wasserstein distance between real and synthetic numbers of events "
    "per patient, in real standard deviations, per table; 0 = same distribution.",
    "time_between_events": "Kolmogorov–Smirnov statistic between the gaps separating a "
    "patient's event days, real against synthetic; 0 = same distribution.",
    "event_order": "Mean absolute difference, over pairs of coded events, of the share of "
    "patients whose first A precedes their first B; 0 = same order.",
    "lab_trajectories": "Mean gap between real and synthetic yearly mean lab values, in real "
    "standard deviations; 0 = same curves.",
    "timeline_tstr": "ROC AUC on real holdout patients of a model trained on synthetic "
    "timelines to predict an event within a horizon; the reference is train-on-real.",
    "timeline_dcr": "Median distance of synthetic patients' timeline summaries to the closest "
    "training patient, over the same for holdout patients; below 1 = closer than fresh data.",
    "timeline_violations": "Share of events breaking a clinical check (after death or end of "
    "follow-up, wrong sex or age for the code, implausible value, unknown item); per kind in "
    "subgroups kind:NAME.",
    "sample_patients_per_second": "Synthetic patients generated per second.",
}


def _check_names(metrics: Sequence[str] | None) -> list[str]:
    if isinstance(metrics, str):
        metrics = [metrics]
    names = list(metrics) if metrics is not None else list(TIMELINE_METRICS)
    unknown = [n for n in names if n not in TIMELINE_METRICS]
    if unknown:
        raise ParameterError(
            f"timeline metric '{unknown[0]}' is not known; known timeline metrics: "
            f"{', '.join(sorted(TIMELINE_METRICS))}"
        )
    return names


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


def _run(name: str, context: Mapping[str, Any]) -> list[MetricRecord]:
    module = importlib.import_module(TIMELINE_METRICS[name])
    params = inspect.signature(module.compute).parameters
    kwargs = {k: v for k, v in context.items() if k in params}
    start = time.perf_counter()
    try:
        records: list[MetricRecord] = module.compute(**kwargs)
    except Exception as e:  # a broken metric must not sink the whole evaluation
        records = [
            MetricRecord(
                name=name,
                dimension=module.DIMENSION,
                value=None,
                direction="higher",
                status="failed",
                message=f"{type(e).__name__}: {e}",
            )
        ]
    took = round(time.perf_counter() - start, 3)
    for r in records:
        r.seconds = took
    return records


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
        Names of the metrics to run (default: all of :data:`TIMELINE_METRICS`).
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
        ``seconds`` and ``meta``.

    Raises
    ------
    ParameterError
        For an unknown metric name, an input that is not a Dataset, times of different kinds,
        or an invalid ``task``.
    """
    names = _check_names(metrics)
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
    records: list[MetricRecord] = []
    for n in names:
        records += _run(n, context)
    sources = dict(sources or {})
    meta = {
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "kind": "timelines",
        "seed": seed,
        "real": _describe(r, sources.get("real")),
        "synthetic": _describe(s, sources.get("synthetic")),
        "holdout": _describe(h, sources.get("holdout")),
        "roles": real.roles(),
        "code_map": getattr(cmap, "name", None),
        "task": dict(task) if task is not None else None,
        "max_patients": max_patients,
        "model": _model_summary(training),
        "warnings": warnings,
        "glossary": {k: v for k, v in GLOSSARY.items() if any(rec.name == k for rec in records)},
        "versions": _versions(),
    }
    return {
        "records": [rec.to_dict() for rec in records],
        "seconds": round(time.perf_counter() - start, 3),
        "meta": _plain(meta),
    }
