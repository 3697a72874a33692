"""The privacy-aware stop of tabular-lm: a check that the model does not copy its rows."""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import numpy as np
import pandas as pd

__all__ = ["privacy_check"]


def privacy_check(
    sample: Callable[[Any, int, int], pd.DataFrame],
    schema: Any,
    train_df: pd.DataFrame,
    val_df: pd.DataFrame,
    *,
    seed: int,
) -> Callable[[Any], dict[str, Any]]:
    """A check of a model: the share of its rows closer to a training row than to a validation row.

    ``sample(model, n, seed)`` draws rows from a model. The training rows are subsampled to the
    validation size, so an honest model scores about one half; the margin is sized by the
    fixed validation rows, which dominate the noise of the share.
    """
    from healthsynth.data._distance import RowEncoder, nearest_distances

    m = len(val_df)
    enc = RowEncoder(schema).fit(train_df)
    sub = np.random.default_rng(seed + 1).choice(
        len(train_df), size=min(m, len(train_df)), replace=False
    )
    train_x = enc.transform(train_df.iloc[sub])
    val_x = enc.transform(val_df)
    margin = max(0.03, 2.0 * math.sqrt(0.25 / max(m, 1)))
    n_synth = int(min(2000, max(5 * m, 200)))

    def check(model: Any) -> dict[str, Any]:
        sx = enc.transform(sample(model, n_synth, seed + 7))
        d_train = nearest_distances(sx, train_x)[:, 0]
        d_val = nearest_distances(sx, val_x)[:, 0]
        share = float(np.mean(d_train < d_val) + 0.5 * np.mean(d_train == d_val))
        return {
            "closer_to_train_share": round(share, 4),
            "threshold": round(0.5 + margin, 4),
            "passed": share <= 0.5 + margin,
        }

    return check
