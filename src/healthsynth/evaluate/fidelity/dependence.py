"""Pairwise dependence difference.

Card
----
What: for every pair of columns an association in [0, 1] — absolute Spearman correlation
(numeric–numeric), bias-uncorrected Cramér's V (categorical–categorical) or the correlation
ratio η (numeric–categorical) — computed on real and on synthetic rows (pairwise-complete);
the value is the mean absolute difference over all pairs.
Range: 0 (same dependence structure) to 1.
Direction: lower is better.
Reference: the same score for the real holdout against the training rows.
Details: the ten largest gaps, and the full ``real``/``synthetic``/``difference`` matrices over
``columns`` (at most 40 columns) for the report's heatmap.
Sample size: at most ``max_rows`` (20,000) rows of each table, a seeded subsample (the
standard error of a correlation from 20,000 rows is under 0.01).
Limitations: pairwise only; association strength, not direction, for categorical pairs.
Citation: SDMetrics' CorrelationSimilarity / ContingencySimilarity follow the same idea.
"""

from __future__ import annotations

import itertools

import numpy as np
import pandas as pd

from healthsynth.data import Schema
from healthsynth.evaluate._base import Measure, MetricInfo, MetricRecord

__all__ = ["INFO", "association_matrix", "compute"]


INFO = MetricInfo(
    name="dependence_difference",
    dimension="fidelity",
    kind="table",
    summary="How far the pairwise associations between columns are from the real ones.",
    measures=(
        Measure(
            "dependence_difference",
            "lower",
            "Mean absolute difference of pairwise associations (Spearman, Cramér's V, "
            "correlation ratio) between real and synthetic rows; 0 = same structure.",
            low=0,
            high=1,
        ),
    ),
)


def _is_cat(kind: str) -> bool:
    return kind in ("categorical", "boolean")


class _Col:
    """A column prepared once: category codes (−1 missing) or floats (NaN missing) and ranks."""

    def __init__(self, s: pd.Series, kind: str) -> None:
        self.cat = _is_cat(kind)
        if self.cat:
            codes, uniques = pd.factorize(s.astype(object).where(s.notna(), None))
            self.codes = codes
            self.n_levels = len(uniques)
            self.present = codes >= 0
        else:
            if kind == "datetime":
                t = pd.to_datetime(s, errors="coerce")
                x = np.where(t.isna(), np.nan, t.astype("int64")).astype(float)
            else:
                x = pd.to_numeric(s, errors="coerce").to_numpy(float)
            self.x = x
            self.present = np.isfinite(x)


def _ranks(x: np.ndarray) -> np.ndarray:
    return pd.Series(x).rank().to_numpy(float)


def _assoc(a: _Col, b: _Col) -> float:
    ok = a.present & b.present
    n = int(ok.sum())
    if n < 3:
        return 0.0
    if not a.cat and not b.cat:
        ra, rb = _ranks(a.x[ok]), _ranks(b.x[ok])
        sa, sb = ra.std(), rb.std()
        if sa == 0 or sb == 0:
            return 0.0
        return float(abs(np.mean((ra - ra.mean()) * (rb - rb.mean())) / (sa * sb)))
    if a.cat and b.cat:
        table = np.bincount(
            a.codes[ok] * b.n_levels + b.codes[ok], minlength=a.n_levels * b.n_levels
        ).reshape(a.n_levels, b.n_levels)
        table = table[table.sum(1) > 0][:, table.sum(0) > 0].astype(float)
        if min(table.shape) < 2:
            return 0.0
        expected = table.sum(1, keepdims=True) * table.sum(0, keepdims=True) / n
        chi2 = float(((table - expected) ** 2 / np.where(expected > 0, expected, 1)).sum())
        return float(np.sqrt(chi2 / (n * (min(table.shape) - 1))))
    num, cat = (b, a) if a.cat else (a, b)
    vals = num.x[ok]
    groups = cat.codes[ok]
    total = ((vals - vals.mean()) ** 2).sum()
    if total == 0:
        return 0.0
    counts = np.bincount(groups, minlength=cat.n_levels)
    sums = np.bincount(groups, weights=vals, minlength=cat.n_levels)
    used = counts > 0
    means = sums[used] / counts[used]
    between = float((counts[used] * (means - vals.mean()) ** 2).sum())
    return float(np.sqrt(between / total))


def association_matrix(
    df: pd.DataFrame, schema: Schema, *, max_rows: int | None = None, seed: int = 0
) -> dict[tuple[str, str], float]:
    """Association of every pair of modelled columns (on at most ``max_rows`` rows)."""
    if max_rows is not None and len(df) > max_rows:
        df = df.iloc[np.random.default_rng(seed).choice(len(df), max_rows, replace=False)]
    cols = schema.modelled
    prepared = {c.name: _Col(df[c.name], c.kind) for c in cols}
    return {
        (a.name, b.name): _assoc(prepared[a.name], prepared[b.name])
        for a, b in itertools.combinations(cols, 2)
    }


def _score(
    a: pd.DataFrame, b: pd.DataFrame, schema: Schema, *, max_rows: int, seed: int
) -> tuple[float, dict[str, float], dict[tuple[str, str], float], dict[tuple[str, str], float]]:
    ma = association_matrix(a, schema, max_rows=max_rows, seed=seed)
    mb = association_matrix(b, schema, max_rows=max_rows, seed=seed)
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
    max_rows: int = 20_000,
) -> list[MetricRecord]:
    """Mean absolute difference of pairwise associations (lower is better)."""
    value, diffs, ma, mb = _score(real, synthetic, schema, max_rows=max_rows, seed=seed)
    ref = None
    if holdout is not None:
        ref = _score(real, holdout, schema, max_rows=max_rows, seed=seed)[0]
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
