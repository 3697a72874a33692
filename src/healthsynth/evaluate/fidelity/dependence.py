"""Pairwise dependence difference.

Card
----
What: for every pair of columns an association in [0, 1] — absolute Spearman correlation
(numeric–numeric), bias-uncorrected Cramér's V (categorical–categorical) or the correlation
ratio η (numeric–categorical) — computed on real and on synthetic rows (pairwise-complete);
the value is the mean absolute difference over all pairs.
Range: 0 (same dependence structure) to 1. Direction: lower is better.
Reference: the same score for the real holdout against the training rows.
Details: the ten largest gaps, and the full ``real``/``synthetic``/``difference`` matrices over
``columns`` (at most 40 columns) for the report's heatmap.
Limitations: pairwise only; association strength, not direction, for categorical pairs.
Citation: SDMetrics' CorrelationSimilarity / ContingencySimilarity follow the same idea.
"""

from __future__ import annotations

import itertools

import numpy as np
import pandas as pd

from healthsynth.data import Schema
from healthsynth.evaluate._base import MetricRecord

__all__ = ["association_matrix", "compute"]


def _is_cat(kind: str) -> bool:
    return kind in ("categorical", "boolean")


def _values(s: pd.Series, kind: str) -> pd.Series:
    if _is_cat(kind):
        return s.astype(object).where(s.notna(), None)
    if kind == "datetime":
        t = pd.to_datetime(s, errors="coerce")
        return pd.Series(np.where(t.isna(), np.nan, t.astype("int64")), index=s.index)
    return pd.to_numeric(s, errors="coerce").astype(float)


def _assoc(x: pd.Series, y: pd.Series, kx: str, ky: str) -> float:
    ok = x.notna() & y.notna()
    x, y = x[ok], y[ok]
    if len(x) < 3:
        return 0.0
    if not _is_cat(kx) and not _is_cat(ky):
        r = pd.Series(x.to_numpy(float)).rank().corr(pd.Series(y.to_numpy(float)).rank())
        return 0.0 if pd.isna(r) else abs(float(r))
    if _is_cat(kx) and _is_cat(ky):
        table = pd.crosstab(x.astype(str), y.astype(str)).to_numpy(float)
        if min(table.shape) < 2:
            return 0.0
        n = table.sum()
        expected = table.sum(1, keepdims=True) * table.sum(0, keepdims=True) / n
        chi2 = float(((table - expected) ** 2 / np.where(expected > 0, expected, 1)).sum())
        return float(np.sqrt(chi2 / (n * (min(table.shape) - 1))))
    if _is_cat(kx):
        x, y = y, x
    vals = x.to_numpy(float)
    groups = y.astype(str).to_numpy()
    total = ((vals - vals.mean()) ** 2).sum()
    if total == 0:
        return 0.0
    between = 0.0
    for g in np.unique(groups):
        v = vals[groups == g]
        between += len(v) * (v.mean() - vals.mean()) ** 2
    return float(np.sqrt(between / total))


def association_matrix(df: pd.DataFrame, schema: Schema) -> dict[tuple[str, str], float]:
    """Association of every pair of modelled columns."""
    cols = schema.modelled
    vals = {c.name: _values(df[c.name], c.kind) for c in cols}
    return {
        (a.name, b.name): _assoc(vals[a.name], vals[b.name], a.kind, b.kind)
        for a, b in itertools.combinations(cols, 2)
    }


def _score(
    a: pd.DataFrame, b: pd.DataFrame, schema: Schema
) -> tuple[float, dict[str, float], dict[tuple[str, str], float], dict[tuple[str, str], float]]:
    ma, mb = association_matrix(a, schema), association_matrix(b, schema)
    diffs = {f"{k[0]}~{k[1]}": abs(ma[k] - mb[k]) for k in ma}
    return (float(np.mean(list(diffs.values()))) if diffs else 0.0), diffs, ma, mb


def _square(names: list[str], pairs: dict[tuple[str, str], float]) -> list[list[float | None]]:
    idx = {n: i for i, n in enumerate(names)}
    m: list[list[float | None]] = [[None] * len(names) for _ in names]
    for (x, y), v in pairs.items():
        if x in idx and y in idx:
            m[idx[x]][idx[y]] = m[idx[y]][idx[x]] = v
    return m


def compute(
    *,
    real: pd.DataFrame,
    synthetic: pd.DataFrame,
    holdout: pd.DataFrame | None = None,
    schema: Schema,
    seed: int = 0,
) -> list[MetricRecord]:
    """Mean absolute difference of pairwise associations (lower is better)."""
    value, diffs, ma, mb = _score(real, synthetic, schema)
    ref = _score(real, holdout, schema)[0] if holdout is not None else None
    worst = dict(sorted(diffs.items(), key=lambda kv: -kv[1])[:10])
    names = [c.name for c in schema.modelled][:40]
    details: dict[str, object] = {"largest_gaps": worst, "columns": names}
    details["real"] = _square(names, ma)
    details["synthetic"] = _square(names, mb)
    details["difference"] = _square(names, {k: abs(ma[k] - mb[k]) for k in ma})
    return [
        MetricRecord(
            name="dependence_difference",
            dimension="fidelity",
            value=value,
            direction="lower",
            reference=ref,
            details=details,
        )
    ]
