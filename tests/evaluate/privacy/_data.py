"""Real tables split three ways for the privacy tests: training, holdout and a disjoint third."""

from __future__ import annotations

import numpy as np
import pandas as pd

from healthsynth.data import Schema, infer_schema
from tests.helpers import real


def three_way(
    name: str, *, seed: int = 0, drop: tuple[str, ...] = ()
) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """Rows of a real table split at random into three disjoint, equal parts."""
    df = real(name).drop(columns=list(drop))
    order = np.random.default_rng(seed).permutation(len(df))
    parts = np.array_split(order, 3)
    return tuple(df.iloc[p].reset_index(drop=True) for p in parts)  # type: ignore[return-value]


def awkward(df: pd.DataFrame, schema: Schema) -> tuple[pd.DataFrame, Schema]:
    """Add what every metric must survive: an all-missing column and a datetime column."""
    df = df.copy()
    df["never_measured"] = np.nan
    df["visit"] = pd.Timestamp("2020-01-01") + pd.to_timedelta(np.arange(len(df)) % 97, unit="D")
    return df, infer_schema(df).with_roles(
        target=schema.target, sensitive=[s for s in schema.sensitive]
    )
