"""Missingness-pattern similarity: whether values go missing together as in the real data.

Card
----
What: each row's missingness pattern is the set of its columns that are missing. The value is
the total-variation distance between the pattern distributions of real and synthetic rows
(half the L1 distance between pattern shares). Per-column missing rates are compared by
:mod:`column_distance`; this metric sees co-missingness, e.g. labs that are absent together
because a test was never ordered.
Range: 0 (same patterns at the same rates) to 1.
Direction: lower is better.
Reference: the same distance for the real holdout.
Details: the most common real patterns with their real and synthetic shares.
Limitations: exact patterns only; with many columns and diverse missingness most patterns are
rare and the distance is dominated by sampling noise (compare it with the reference).
Citation: missing-data patterns as in Little & Rubin, *Statistical Analysis with Missing Data*.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from healthsynth.data import Schema
from healthsynth.evaluate._base import Measure, MetricInfo, MetricRecord

__all__ = ["INFO", "compute", "pattern_shares"]


INFO = MetricInfo(
    name="missingness_patterns",
    dimension="fidelity",
    kind="table",
    summary="Whether values go missing together as in the real data.",
    measures=(
        Measure(
            "missingness_pattern_distance",
            "lower",
            "Total-variation distance between the shares of missing-value patterns (which "
            "columns are missing together); 0 = same patterns.",
            low=0,
            high=1,
        ),
    ),
)


def pattern_shares(df: pd.DataFrame, columns: list[str]) -> pd.Series:
    """Share of rows per missingness pattern (a pattern is a "+"-joined list of missing columns)."""
    miss = df[columns].isna().to_numpy()
    names = np.asarray(columns, dtype=object)
    keys = ["+".join(names[row]) if row.any() else "(complete)" for row in miss]
    return pd.Series(keys).value_counts(normalize=True)


def _tv(a: pd.Series, b: pd.Series) -> float:
    return 0.5 * float(a.sub(b, fill_value=0).abs().sum())


def compute(
    *,
    real: pd.DataFrame,
    synthetic: pd.DataFrame,
    holdout: pd.DataFrame | None = None,
    schema: Schema,
    seed: int = 0,
) -> list[MetricRecord]:
    """Total-variation distance between missingness-pattern distributions (lower is better)."""
    cols = [c.name for c in schema.modelled]
    pr, ps = pattern_shares(real, cols), pattern_shares(synthetic, cols)
    ref = _tv(pr, pattern_shares(holdout, cols)) if holdout is not None else None
    top = pr.index[:10]
    details = {
        "patterns": [
            {"pattern": k, "real": float(pr[k]), "synthetic": float(ps.get(k, 0.0))} for k in top
        ],
        "n_real_patterns": int(len(pr)),
        "n_synthetic_patterns": int(len(ps)),
    }
    message = None
    if len(pr) == 1 and len(ps) == 1 and pr.index[0] == ps.index[0] == "(complete)":
        message = "no value is missing in either table"
    return [
        MetricRecord(
            name="missingness_pattern_distance",
            dimension="fidelity",
            value=_tv(pr, ps),
            direction="lower",
            reference=ref,
            details=details,
            message=message,
        )
    ]
