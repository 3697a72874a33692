"""Two ordered columns that are equal whenever a category takes one value.

In survival/mgus2 the progression time is the follow-up time for every patient who did not
progress (``pstat = 0``): ``ptime <= futime`` always, and ``ptime = futime`` whenever
``pstat = 0``. A generator that keeps the order but draws the two times apart for such a
patient writes a progression that never happened. :func:`learn_equal_when` finds, for each
learned column order, the values of categorical columns under which the two columns are equal
in every training row (at least :data:`MIN_ROWS` rows with both values), where they are not
equal in every row overall. The ``structure_violations`` metric counts the synthetic rows of any
generator that break them; tabular-lm keeps them while decoding (its tie chances per value).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from healthsynth.data import Schema
from healthsynth.knowledge._orders import ColumnOrder, as_numbers, category_columns, plain_value

__all__ = ["MIN_ROWS", "EqualWhen", "EqualWhenSet", "learn_equal_when"]

#: Training rows (with both values) a category value needs before its equality is kept.
MIN_ROWS = 20


@dataclass(frozen=True)
class EqualWhen:
    """``low`` equals ``high`` in every row whose ``by`` is ``value`` (and has both)."""

    low: str
    high: str
    by: str
    value: Any

    def describe(self) -> str:
        """As records name it: ``"ptime = futime when pstat is 0"``."""
        return f"{self.low} = {self.high} when {self.by} is {self.value}"


def learn_equal_when(
    data: pd.DataFrame, schema: Schema, orders: Sequence[ColumnOrder]
) -> tuple[list[EqualWhen], dict[str, Any]]:
    """Equalities under a category value, for the pairs of ``orders``, and their record."""
    cats = category_columns(data, schema)
    found: list[EqualWhen] = []
    for o in orders:
        if o.low not in data.columns or o.high not in data.columns:
            continue
        lo = as_numbers(data[o.low], schema[o.low].kind)
        hi = as_numbers(data[o.high], schema[o.high].kind)
        both = np.isfinite(lo) & np.isfinite(hi)
        equal = both & (lo == hi)
        if equal.sum() == both.sum():  # equal in every row: not a matter of category
            continue
        for name in cats:
            if name in (o.low, o.high):
                continue
            col = data[name]
            for value in pd.unique(col.dropna()):
                at = both & (col == value).to_numpy()
                if at.sum() >= MIN_ROWS and bool(equal[at].all()):
                    found.append(EqualWhen(o.low, o.high, name, plain_value(value)))
    return found, {"equal_when": [e.describe() for e in found]}


class EqualWhenSet:
    """Equalities under a category value that rows must keep."""

    def __init__(self, rules: Sequence[EqualWhen], schema: Schema) -> None:
        self.rules = list(rules)
        self.schema = schema

    def __len__(self) -> int:
        return len(self.rules)

    def violations(self, df: pd.DataFrame) -> pd.DataFrame:
        """Which rows break which equality (the category's value, both values, not equal)."""
        out = {}
        for e in self.rules:
            lo = as_numbers(df[e.low], self.schema[e.low].kind)
            hi = as_numbers(df[e.high], self.schema[e.high].kind)
            at = (df[e.by] == e.value).to_numpy()
            out[e.describe()] = at & np.isfinite(lo) & np.isfinite(hi) & (lo != hi)
        return pd.DataFrame(out, index=df.index, dtype=bool)
