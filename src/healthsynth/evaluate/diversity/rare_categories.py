"""Rare-category retention: whether the synthetic data keeps the real data's rare values.

Card
----
What: a category is rare when it holds under ``threshold`` (5%) of a column's present real
values. For each rare category, retention = min(synthetic share / real share, 1); the value is
the mean retention over all rare categories of all categorical and boolean columns. Generators
that smooth towards the majority lose exactly these values — often the clinically interesting
ones (a rare stage, a minority group).
Range: 0 (every rare category lost) to 1 (each kept at least at its real rate).
Direction: higher is better.
Reference: the same score for the real holdout.
Details: retention per rare category (``column=value``).
Not applicable when no column has a rare category.
Limitations: over-representation is not penalised here (``column_distance`` sees it).
Citation: the rare-category concern of synthetic health data, e.g. Yan et al. 2022
(multifaceted benchmarking of synthetic EHR generators).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from healthsynth.data import Schema
from healthsynth.evaluate._base import Measure, MetricInfo, MetricRecord, not_applicable

__all__ = ["INFO", "compute", "retention"]


INFO = MetricInfo(
    name="rare_categories",
    dimension="diversity",
    kind="table",
    summary="Whether categories that are rare in the real data keep their share.",
    measures=(
        Measure(
            "rare_category_retention",
            "higher",
            "How well categories rare in real data (under 5%) keep their share in synthetic "
            "data; 1 = all kept.",
            low=0,
            high=1,
        ),
    ),
)


def retention(
    real: pd.DataFrame, other: pd.DataFrame, schema: Schema, *, threshold: float = 0.05
) -> dict[str, float]:
    """Retention of each rare real category (``column=value``) in ``other``."""
    out = {}
    for c in schema.modelled:
        if c.kind not in ("categorical", "boolean"):
            continue
        r = real[c.name].dropna().astype(str).value_counts(normalize=True)
        o = other[c.name].dropna().astype(str).value_counts(normalize=True)
        for value, share in r[r < threshold].items():
            out[f"{c.name}={value}"] = min(float(o.get(value, 0.0)) / float(share), 1.0)
    return out


def compute(
    *,
    real: pd.DataFrame,
    synthetic: pd.DataFrame,
    holdout: pd.DataFrame | None = None,
    schema: Schema,
    seed: int = 0,
    threshold: float = 0.05,
) -> list[MetricRecord]:
    """Mean retention of rare categories (higher is better)."""
    per = retention(real, synthetic, schema, threshold=threshold)
    if not per:
        return [
            not_applicable(
                "rare_category_retention",
                "diversity",
                f"no categorical column has a category under {threshold:.0%} of its real values",
            )
        ]
    ref = None
    if holdout is not None:
        ref_per = retention(real, holdout, schema, threshold=threshold)
        ref = float(np.mean(list(ref_per.values())))
    return [
        MetricRecord(
            name="rare_category_retention",
            dimension="diversity",
            value=float(np.mean(list(per.values()))),
            direction="higher",
            reference=ref,
            details={"per_category": per, "threshold": threshold},
        )
    ]
