"""Per-column distribution distance.

Card
----
What: for each column, the Kolmogorov–Smirnov statistic (numeric, integer, datetime: largest gap
between the two empirical CDFs of the present values) or the total-variation distance (categorical,
boolean: half the L1 distance between category shares), plus the gap in missing-value rates;
the record's value is the mean over columns of ``max(distance, missing-rate gap)``.
Range: 0 (same marginals) to 1.
Direction: lower is better.
Reference: the same score for the real holdout against the training rows.
Details: ``per_column`` distances, and ``distributions`` (per column, the shares of real,
synthetic and holdout values in common bins or categories) for the report's plots.
Limitations: marginals only — says nothing about relations between columns.
Citation: the KS and TV complements are SDMetrics' KSComplement / TVComplement (DataCebo).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from healthsynth.data import Schema
from healthsynth.evaluate._base import Measure, MetricInfo, MetricRecord

__all__ = ["INFO", "column_distances", "compute", "distributions"]

#: bins for numeric distribution plots, and categories shown before the rest become "other"
_PLOT_BINS = 20
_PLOT_CATEGORIES = 15


INFO = MetricInfo(
    name="column_distance",
    dimension="fidelity",
    kind="table",
    summary="How far each column's distribution is from the real one, averaged over columns.",
    measures=(
        Measure(
            "column_distance",
            "lower",
            "Mean over columns of the distance between real and synthetic marginals "
            "(Kolmogorov–Smirnov for numbers, total variation for categories, or the gap in "
            "missing rates); 0 = same marginals.",
            low=0,
            high=1,
        ),
    ),
)


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
            details={
                "per_column": per,
                "per_column_reference": ref_per,
                "distributions": distributions(real, synthetic, holdout, schema),
            },
        )
    ]


def distributions(
    real: pd.DataFrame, synthetic: pd.DataFrame, holdout: pd.DataFrame | None, schema: Schema
) -> dict[str, dict[str, object]]:
    """Shares of each table's values in common bins (numbers) or categories, per column.

    Missing values get their own label, ``(missing)``, when any table has them.
    """
    out: dict[str, dict[str, object]] = {}
    tables = {"real": real, "synthetic": synthetic, "holdout": holdout}
    for c in schema.modelled:
        present = {k: v[c.name] for k, v in tables.items() if v is not None}
        any_missing = any(s.isna().any() for s in present.values())
        if c.kind in ("categorical", "boolean"):
            shares = real[c.name].dropna().astype(str).value_counts()
            top = shares.index[:_PLOT_CATEGORIES].tolist()
            labels = top + (["(other)"] if len(shares) > len(top) else [])
            entry: dict[str, object] = {"kind": "categorical"}
            for k, s in present.items():
                v = s.dropna().astype(str)
                counts = [float((v == t).sum()) for t in top]
                if len(labels) > len(top):
                    counts.append(float((~v.isin(top)).sum()))
                entry[k] = counts
        else:
            xr = _num(real[c.name].dropna(), c.kind)
            xr = xr[np.isfinite(xr)]
            if len(xr) == 0:
                continue
            lo, hi = float(np.min(xr)), float(np.max(xr))
            edges = np.linspace(lo, hi if hi > lo else lo + 1, _PLOT_BINS + 1)
            labels = [f"{edges[i]:.4g}" for i in range(_PLOT_BINS)]
            entry = {"kind": "numeric", "edges": edges.tolist()}
            for k, s in present.items():
                x = _num(s.dropna(), c.kind)
                x = np.clip(x[np.isfinite(x)], edges[0], edges[-1])
                entry[k] = np.histogram(x, bins=edges)[0].astype(float).tolist()
        if any_missing:
            labels = labels + ["(missing)"]
            for k, s in present.items():
                entry[k] = list(entry[k]) + [float(s.isna().sum())]  # type: ignore[call-overload]
        for k, s in present.items():
            entry[k] = [v / max(len(s), 1) for v in entry[k]]  # type: ignore[attr-defined]
        entry["labels"] = labels
        entry.setdefault("holdout", None)
        out[c.name] = entry
    return out
