"""Seeded row subsamples, shared by the privacy metrics."""

from __future__ import annotations

import numpy as np
import pandas as pd

__all__ = ["subsample"]


def subsample(df: pd.DataFrame, n: int, rng: np.random.Generator) -> pd.DataFrame:
    """At most ``n`` rows of ``df``: all of them, or a seeded random subset in table order."""
    if len(df) <= n:
        return df
    return df.iloc[np.sort(rng.choice(len(df), n, replace=False))]
