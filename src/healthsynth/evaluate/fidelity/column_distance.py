"""Per-column distribution distance.

Card
----
What: for each column, the Kolmogorov–Smirnov statistic (numeric, integer, datetime: largest gap
between the two empirical CDFs of the present values) or the total-variation distance (categorical,
boolean: half the L1 distance between category shares), plus the gap in missing-value rates;
the record's value is the mean over columns of ``max(distance, missing-rate gap)``.
Range: 0 (same marginals) to 1. Direction: lower is better.
Reference: the same score for the real holdout against the training rows.
Limitations: marginals only — says nothing about relations between columns.
Citation: the KS and TV complements are SDMetrics' KSComplement / TVComplement (DataCebo).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from healthsynth.data import Schema
from healthsynth.evaluate._base import MetricRecord

__all__ = ["column_distances", "compute"]


def column_distances(a: pd.DataFrame, b: pd.DataFrame, schema: Schema) -> dict[str, float]:
    """Distance per modelled column between tables ``a`` and ``b``."""
    out = {}
    for c in schema.modelled:
        sa, sb = a[c.name], b[c.name]
        miss_gap = abs(float(sa.isna().mean()) - float(sb.isna().mean()))
        pa, pb = sa.dropna(), sb.dropna()
        if len(pa) == 0 or len(pb) == 0:
            d = 0.0 if len(pa) == len(pb) == 0 else 1.0
        elif c.kind in ("categorical", "boolean"):
            fa = pa.astype(str).value_counts(normalize=True)
            fb = pb.astype(str).value_counts(normalize=True)
            d = 0.5 * float(fa.sub(fb, fill_value=0).abs().sum())
        else:
            xa, xb = _num(pa, c.kind), _num(pb, c.kind)
            d = _ks(xa, xb)
        out[c.name] = max(d, miss_gap)
    return out


def _num(s: pd.Series, kind: str) -> np.ndarray:
    if kind == "datetime":
        return pd.to_datetime(s).astype("int64").to_numpy(float)
    return pd.to_numeric(s, errors="coerce").to_numpy(float)


def _ks(x: np.ndarray, y: np.ndarray) -> float:
    x, y = np.sort(x), np.sort(y)
    grid = np.concatenate([x, y])
    cx = np.searchsorted(x, grid, side="right") / len(x)
    cy = np.searchsorted(y, grid, side="right") / len(y)
    return float(np.max(np.abs(cx - cy)))


def compute(
    *,
    real: pd.DataFrame,
    synthetic: pd.DataFrame,
    holdout: pd.DataFrame | None = None,
    schema: Schema,
    seed: int = 0,
) -> list[MetricRecord]:
    """Mean per-column distance (lower is better), with per-column values in ``details``."""
    per = column_distances(real, synthetic, schema)
    ref = None
    ref_per = None
    if holdout is not None:
        ref_per = column_distances(real, holdout, schema)
        ref = float(np.mean(list(ref_per.values())))
    return [
        MetricRecord(
            name="column_distance",
            dimension="fidelity",
            value=float(np.mean(list(per.values()))),
            direction="lower",
            reference=ref,
            details={"per_column": per, "per_column_reference": ref_per},
        )
    ]
