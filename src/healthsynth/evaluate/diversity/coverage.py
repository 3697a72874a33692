"""Coverage: how much of the real data's range and categories the synthetic rows reach.

Card
----
What: for each categorical or boolean column, the share of the real categories that occur at
least once among the synthetic rows; for each numeric, integer or datetime column, the share of
the real values' 20 quantile bins (edges at real values, ties merged) that hold at least one
synthetic value — or, with at most 20 distinct real values, the share of those values that occur
among the synthetic ones. The value is the mean over columns.
Range: 0 to 1.
Direction: higher is better.
Reference: the same score for the real holdout (which, being finite, also misses rare
categories: a synthetic table larger than the holdout can score above it).
Details: per-column coverage.
Limitations: presence only — one synthetic row in a bin counts as covering it; says nothing
about shares (see ``column_distance``) or rare categories' amounts (see ``rare_categories``).
Citation: "coverage" as in synthcity's and SDMetrics' CategoryCoverage / RangeCoverage.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from healthsynth.data import Schema
from healthsynth.evaluate._base import Measure, MetricInfo, MetricRecord
from healthsynth.evaluate.fidelity.column_distance import _num

__all__ = ["INFO", "column_coverage", "compute"]


INFO = MetricInfo(
    name="coverage",
    dimension="diversity",
    kind="table",
    summary="How much of the real data's range and categories the synthetic rows reach.",
    measures=(
        Measure(
            "coverage",
            "higher",
            "Share of real categories and value bins that occur in the synthetic data; "
            "1 = all covered.",
            low=0,
            high=1,
        ),
    ),
)


def column_coverage(real: pd.DataFrame, other: pd.DataFrame, schema: Schema) -> dict[str, float]:
    """Coverage of each column of ``real`` by ``other``."""
    out = {}
    for c in schema.modelled:
        r, o = real[c.name].dropna(), other[c.name].dropna()
        if len(r) == 0:
            continue
        if c.kind in ("categorical", "boolean"):
            cats = set(r.astype(str))
            out[c.name] = len(cats & set(o.astype(str))) / len(cats)
            continue
        xr, xo = _num(r, c.kind), _num(o, c.kind)
        xr, xo = xr[np.isfinite(xr)], xo[np.isfinite(xo)]
        distinct = np.unique(xr)
        if len(distinct) <= 20:
            out[c.name] = float(np.isin(distinct, xo).mean())
            continue
        # edges are data values, so every bin holds at least one real value
        edges = np.unique(np.quantile(xr, np.linspace(0, 1, 21), method="lower"))
        if len(edges) < 2:
            out[c.name] = float(np.any(xo == edges[0])) if len(xo) else 0.0
            continue
        inside = xo[(xo >= edges[0]) & (xo <= edges[-1])]
        hit = np.unique(
            np.clip(np.searchsorted(edges, inside, side="right") - 1, 0, len(edges) - 2)
        )
        out[c.name] = len(hit) / (len(edges) - 1)
    return out


def compute(
    *,
    real: pd.DataFrame,
    synthetic: pd.DataFrame,
    holdout: pd.DataFrame | None = None,
    schema: Schema,
    seed: int = 0,
) -> list[MetricRecord]:
    """Mean coverage of real categories and value ranges (higher is better)."""
    per = column_coverage(real, synthetic, schema)
    ref = None
    if holdout is not None:
        ref = float(np.mean(list(column_coverage(real, holdout, schema).values())))
    return [
        MetricRecord(
            name="coverage",
            dimension="diversity",
            value=float(np.mean(list(per.values()))) if per else None,
            direction="higher",
            reference=ref,
            details={"per_column": per},
        )
    ]
