"""The metric contract: tidy records, one module per metric, a registry by name."""

from __future__ import annotations

import importlib
import inspect
import time
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

import numpy as np
import pandas as pd

from healthsynth.data import Schema
from healthsynth.errors import ParameterError

__all__ = [
    "DIMENSIONS",
    "METRICS",
    "MetricRecord",
    "features",
    "get_metric",
    "not_applicable",
    "run_metric",
]

Direction = Literal["higher", "lower", "target"]


@dataclass
class MetricRecord:
    """One number a metric produced.

    ``reference`` is what fresh real data (the holdout, scored as if it were synthetic) gets on
    the same metric, so every figure can be read next to the ceiling.
    """

    name: str
    dimension: str
    value: float | None
    direction: Direction
    subgroup: str | None = None
    interval: tuple[float, float] | None = None
    reference: float | None = None
    seconds: float | None = None
    details: dict[str, Any] = field(default_factory=dict)
    status: str = "ok"  # ok | not_applicable | failed
    message: str | None = None

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-serializable dict."""
        d = asdict(self)
        d["interval"] = list(self.interval) if self.interval is not None else None
        return _plain(d)


def _plain(obj: Any) -> Any:
    if isinstance(obj, dict):
        return {str(k): _plain(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_plain(v) for v in obj]
    if isinstance(obj, np.generic):
        obj = obj.item()
    if isinstance(obj, float) and not np.isfinite(obj):
        return None
    return obj


#: name -> module whose ``compute`` implements the metric, imported on first use. The module's
#: package (``fidelity``, ``utility`` ...) is the metric's dimension.
METRICS: dict[str, str] = {
    # fidelity
    "column_distance": "healthsynth.evaluate.fidelity.column_distance",
    "dependence_difference": "healthsynth.evaluate.fidelity.dependence",
    "detection_auc": "healthsynth.evaluate.fidelity.detection",
    "precision_recall": "healthsynth.evaluate.fidelity.precision_recall",
    "missingness_patterns": "healthsynth.evaluate.fidelity.missingness",
    # utility
    "tstr": "healthsynth.evaluate.utility.tstr",
    "augmentation_lift": "healthsynth.evaluate.utility.augmentation",
    "importance_agreement": "healthsynth.evaluate.utility.importance",
    # privacy
    "dcr": "healthsynth.evaluate.privacy.dcr",
    "membership_inference": "healthsynth.evaluate.privacy.membership",
    "attribute_inference": "healthsynth.evaluate.privacy.attribute",
    "anonymeter": "healthsynth.evaluate.privacy.anonymeter_risks",
    "regurgitation": "healthsynth.evaluate.privacy.regurgitation",
    # diversity
    "coverage": "healthsynth.evaluate.diversity.coverage",
    "duplicates": "healthsynth.evaluate.diversity.duplicates",
    "rare_categories": "healthsynth.evaluate.diversity.rare_categories",
    # fairness
    "subgroup_shares": "healthsynth.evaluate.fairness.subgroup_shares",
    "subgroup_fidelity": "healthsynth.evaluate.fairness.subgroup_fidelity",
    "subgroup_utility": "healthsynth.evaluate.fairness.subgroup_utility",
    # clinical validity
    "rule_violations": "healthsynth.evaluate.clinical.rule_violations",
    # cost
    "cost": "healthsynth.evaluate.cost.resources",
}

#: the order dimensions are reported in
DIMENSIONS = ("fidelity", "utility", "privacy", "diversity", "fairness", "clinical", "cost")


def get_metric(name: str) -> Callable[..., list[MetricRecord]]:
    """The ``compute`` function of metric ``name``."""
    if name not in METRICS:
        raise ParameterError(
            f"metric '{name}' is not known; known metrics: {', '.join(sorted(METRICS))}"
        )
    return importlib.import_module(METRICS[name]).compute  # type: ignore[no-any-return]


def run_metric(name: str, **context: Any) -> list[MetricRecord]:
    """Run one metric, timing it; a failure becomes a ``failed`` record instead of a crash.

    ``context`` may hold more than the metric takes (``rules``, ``training``, ``sampling`` ...):
    each metric receives only the keyword arguments its ``compute`` declares.
    """
    fn = get_metric(name)
    params = inspect.signature(fn).parameters
    kwargs = {k: v for k, v in context.items() if k in params}
    start = time.perf_counter()
    try:
        records = fn(**kwargs)
    except Exception as e:  # a broken metric must not sink the whole evaluation
        records = [
            MetricRecord(
                name=name,
                dimension=_dimension(name),
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


def not_applicable(name: str, dimension: str, why: str, **fields: Any) -> MetricRecord:
    """A record saying that a metric cannot apply to this data, and why."""
    fields.setdefault("direction", "higher")
    return MetricRecord(
        name=name, dimension=dimension, value=None, status="not_applicable", message=why, **fields
    )


def _dimension(name: str) -> str:
    return METRICS[name].split(".")[2]


def features(
    frames: Iterable[pd.DataFrame], schema: Schema, *, exclude: Iterable[str] = ()
) -> tuple[list[np.ndarray], list[str], np.ndarray]:
    """Encode tables for tree models: numbers as floats (NaN kept), categories as codes.

    Returns the matrices, the column names, and the categorical-feature mask.
    """
    exclude = set(exclude)
    cols = [c for c in schema.modelled if c.name not in exclude]
    frames = list(frames)
    out = [np.empty((len(f), len(cols))) for f in frames]
    cat_mask = np.zeros(len(cols), bool)
    for j, c in enumerate(cols):
        if c.kind in ("categorical", "boolean"):
            cat_mask[j] = True
            cats = list(c.categories or [])
            for f, m in zip(frames, out, strict=True):
                codes = pd.Categorical(f[c.name], categories=cats).codes.astype(float)
                m[:, j] = np.where(codes < 0, np.nan, codes)
        elif c.kind == "datetime":
            for f, m in zip(frames, out, strict=True):
                t = pd.to_datetime(f[c.name], errors="coerce")
                m[:, j] = (t - pd.Timestamp("1970-01-01")).dt.total_seconds().to_numpy(float)
        else:
            for f, m in zip(frames, out, strict=True):
                m[:, j] = pd.to_numeric(f[c.name], errors="coerce").to_numpy(float)
    return out, [c.name for c in cols], cat_mask
