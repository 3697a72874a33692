"""Duplicate rate: how often the generator repeats itself.

Card
----
What: the share of synthetic rows that are an exact copy of an earlier synthetic row (all
compared columns equal, missing equal to missing). Copies of *training* rows are a privacy
matter and are counted by ``exact_copy_rate`` in :mod:`..privacy.dcr`.
Range: 0 to 1.
Direction: lower is better.
Reference: the same share within the real holdout (or, without one, the training rows) —
real tables with few, coarse columns hold genuine duplicates.
Limitations: exact equality only; near-duplicates are not counted. The rate grows with the
number of rows for tables with small domains, so compare tables of similar size.
Citation: diversity checks of synthetic tabular data, e.g. Borisov et al. 2023 (GReaT).
"""

from __future__ import annotations

import pandas as pd

from healthsynth.data import Schema
from healthsynth.evaluate._base import Measure, MetricInfo, MetricRecord

__all__ = ["INFO", "compute", "duplicate_rate"]


INFO = MetricInfo(
    name="duplicates",
    dimension="diversity",
    kind="table",
    summary="How often the generator repeats itself.",
    measures=(
        Measure(
            "duplicate_rate",
            "lower",
            "Share of synthetic rows that repeat an earlier synthetic row.",
            low=0,
            high=1,
        ),
    ),
)


def duplicate_rate(df: pd.DataFrame, columns: list[str]) -> float:
    """Share of rows that repeat an earlier row on ``columns``."""
    if len(df) == 0:
        return 0.0
    return float(df[columns].astype(str).duplicated().mean())


def compute(
    *,
    real: pd.DataFrame,
    synthetic: pd.DataFrame,
    holdout: pd.DataFrame | None = None,
    schema: Schema,
    seed: int = 0,
) -> list[MetricRecord]:
    """Share of repeated synthetic rows, next to the same share in real data."""
    cols = [c.name for c in schema.modelled]
    ref_table = holdout if holdout is not None else real
    return [
        MetricRecord(
            name="duplicate_rate",
            dimension="diversity",
            value=duplicate_rate(synthetic, cols),
            direction="lower",
            reference=duplicate_rate(ref_table, cols),
            details={"reference_table": "holdout" if holdout is not None else "real"},
        )
    ]
