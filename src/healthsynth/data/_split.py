"""Seeded train / holdout splits."""

from __future__ import annotations

import numpy as np
import pandas as pd

from healthsynth.errors import ParameterError

__all__ = ["train_holdout_split"]


def train_holdout_split(
    df: pd.DataFrame, *, holdout: float = 0.2, seed: int = 0
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Split rows at random into a training and a holdout part (index reset on both)."""
    if not 0.0 < holdout < 1.0:
        raise ParameterError(f"holdout must be a fraction between 0 and 1; got {holdout}")
    rng = np.random.default_rng(seed)
    order = rng.permutation(len(df))
    n_hold = max(1, int(round(holdout * len(df))))
    hold, train = order[:n_hold], order[n_hold:]
    return df.iloc[train].reset_index(drop=True), df.iloc[hold].reset_index(drop=True)
