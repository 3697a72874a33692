"""Rows as hashable keys, for finding copies of real rows (exact equality, typed per column)."""

from __future__ import annotations

from typing import Any

import pandas as pd

from healthsynth.data._schema import Column

__all__ = ["row_keys"]


def row_keys(df: pd.DataFrame, cols: list[Column]) -> list[tuple[Any, ...]]:
    """One hashable key per row over ``cols``.

    Numbers become floats, datetimes timestamps, categories stay as they are, and every kind of
    missing value becomes ``None`` (so a missing value equals a missing value).
    """
    parts = []
    for c in cols:
        s = df[c.name]
        if c.kind in ("numeric", "integer"):
            s = pd.to_numeric(s, errors="coerce").astype(float)
        elif c.kind == "datetime":
            s = pd.to_datetime(s, errors="coerce")
        values = s.astype(object).to_numpy(copy=True)
        values[s.isna().to_numpy()] = None
        parts.append(values.tolist())
    if not parts:
        return [()] * len(df)
    return list(zip(*parts, strict=True))
