"""Patient subgroups defined by a sensitive column.

A categorical or boolean column defines one subgroup per category (``sex=f``); a numeric one with
at most 10 distinct values one per value (``stage=3``); any other numeric one is cut at the real
data's quartiles, taken at data values (``age in [41, 53)``; the last group is closed). A
subgroup too small for a metric is reported by that metric as not applicable.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pandas as pd

from healthsynth.data import Schema

__all__ = ["Subgroup", "subgroups"]

Subgroup = tuple[str, Callable[[pd.DataFrame], np.ndarray]]

#: a numeric column with at most this many distinct values gets one subgroup per value
_MAX_LEVELS = 10


def subgroups(schema: Schema, real: pd.DataFrame, column: str) -> list[Subgroup]:
    """The subgroups of ``column`` as (label, function giving a row mask of a table)."""
    col = schema[column]
    if col.kind in ("categorical", "boolean"):
        values = real[column].dropna().astype(str).value_counts().index.tolist()
        return [(f"{column}={v}", _equals(column, v)) for v in values]
    x = pd.to_numeric(real[column], errors="coerce").to_numpy(float)
    x = x[np.isfinite(x)]
    if len(x) == 0:
        return []
    distinct = np.unique(x)
    if len(distinct) <= _MAX_LEVELS:  # a coded number (stage 1-4): one group per value
        return [(f"{column}={v:g}", _between(column, v, v, True)) for v in distinct]
    # quantiles at data values, so every group holds real rows and labels are real values
    edges = np.unique(np.quantile(x, [0, 0.25, 0.5, 0.75, 1], method="lower"))
    if len(edges) < 2:
        return [(f"{column}={edges[0]:.3g}", _between(column, edges[0], edges[0], True))]
    out = []
    for i in range(len(edges) - 1):
        last = i == len(edges) - 2
        label = f"{column} in [{edges[i]:.3g}, {edges[i + 1]:.3g}{']' if last else ')'}"
        out.append((label, _between(column, edges[i], edges[i + 1], last)))
    return out


def _equals(column: str, value: str) -> Callable[[pd.DataFrame], np.ndarray]:
    def mask(df: pd.DataFrame) -> np.ndarray:
        s = df[column]
        return (s.notna() & (s.astype(str) == value)).to_numpy()

    return mask


def _between(
    column: str, lo: float, hi: float, closed: bool
) -> Callable[[pd.DataFrame], np.ndarray]:
    def mask(df: pd.DataFrame) -> np.ndarray:
        x = pd.to_numeric(df[column], errors="coerce").to_numpy(float)
        upper = (x <= hi) if closed else (x < hi)
        return np.asarray((x >= lo) & upper)

    return mask
