"""Columns missing together: learned from the training rows, kept in every sampled row.

A registry records a transplant's date and the wait before it for transplanted patients only,
and the four tissue-match scores of survival/jasa for the same patients: in every real row those
columns are all there or all missing. A model that draws each column's "missing" on its own
leaves a wait without a transplant date now and then (survival/jasa: 1.2 % of rows), and a
duration or sum with one part missing cannot be checked at all.

:func:`learn_missing_together` groups the modelled columns whose missing values fall on exactly
the same training rows (each at least :data:`MIN_EACH` rows missing and as many present).
tabular-lm keeps the groups while decoding (a column of a group is missing exactly when the
group's columns decoded before it are), and the ``structure_violations`` metric counts the
synthetic rows of any generator that break them.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from healthsynth.data import Schema
from healthsynth.knowledge._orders import category_columns, plain_value

__all__ = [
    "MIN_EACH",
    "MissingTogether",
    "MissingWhen",
    "MissingWhenSet",
    "learn_missing_together",
    "learn_missing_when",
]

#: Rows missing, and rows present, that each column of a group must have in the training rows.
MIN_EACH = 5


def learn_missing_together(
    data: pd.DataFrame, schema: Schema
) -> tuple[list[tuple[str, ...]], dict[str, Any]]:
    """Groups of modelled columns missing on exactly the same rows, and their record."""
    by_mask: dict[bytes, list[str]] = {}
    for c in schema.modelled:
        if c.name not in data.columns:
            continue
        miss = data[c.name].isna().to_numpy()
        if MIN_EACH <= miss.sum() <= len(miss) - MIN_EACH:
            by_mask.setdefault(np.packbits(miss).tobytes(), []).append(c.name)
    groups = [tuple(names) for names in by_mask.values() if len(names) > 1]
    return groups, {"groups": [list(g) for g in groups]}


class MissingTogether:
    """Groups of columns that are all present or all missing in every row."""

    def __init__(self, groups: list[tuple[str, ...]]) -> None:
        self.groups = [tuple(g) for g in groups]

    def __len__(self) -> int:
        return len(self.groups)

    @staticmethod
    def describe(group: tuple[str, ...]) -> str:
        """The group as records name it: ``"a, b missing together"``."""
        return f"{', '.join(group)} missing together"

    def violations(self, df: pd.DataFrame) -> pd.DataFrame:
        """Which rows break which group (some of its columns missing, not all)."""
        out = {}
        for g in self.groups:
            miss = df[list(g)].isna().to_numpy()
            out[self.describe(g)] = miss.any(axis=1) & ~miss.all(axis=1)
        return pd.DataFrame(out, index=df.index, dtype=bool)


@dataclass(frozen=True)
class MissingWhen:
    """``columns`` are missing in exactly the rows whose ``by`` is ``value``.

    survival/jasa: the transplant date and the wait for it are missing exactly for the
    patients with ``transplant = 0``; a registry's death date exactly for those alive.
    """

    columns: tuple[str, ...]
    by: str
    value: Any

    def describe(self) -> str:
        """As records name it: ``"tx.date, wait.time missing exactly when transplant is 0"``."""
        return f"{', '.join(self.columns)} missing exactly when {self.by} is {self.value}"

    def state(self) -> dict[str, Any]:
        """Plain JSON."""
        return {"columns": list(self.columns), "by": self.by, "value": self.value}


def learn_missing_when(
    data: pd.DataFrame, schema: Schema, groups: list[tuple[str, ...]] | None = None
) -> tuple[list[MissingWhen], dict[str, Any]]:
    """Columns missing exactly when a category has one value, in every training row.

    The columns are a missing-together group or one column; at least :data:`MIN_EACH` rows on
    each side.
    """
    if groups is None:
        groups = learn_missing_together(data, schema)[0]
    grouped = {c for g in groups for c in g}
    units = list(groups)
    for c in schema.modelled:
        if c.name in data.columns and c.name not in grouped:
            units.append((c.name,))
    counts = {name: data[name].value_counts() for name in category_columns(data, schema)}
    found: list[MissingWhen] = []
    for unit in units:
        miss = data[unit[0]].isna().to_numpy()
        k = int(miss.sum())
        if not MIN_EACH <= k <= len(miss) - MIN_EACH:
            continue
        for name, vc in counts.items():
            if name in unit:
                continue
            col = data[name]
            # only a value on exactly as many rows as are missing can be the missing rows
            for value in vc.index[vc.to_numpy() == k]:
                if np.array_equal((col == value).to_numpy(), miss):
                    found.append(MissingWhen(tuple(unit), name, plain_value(value)))
    return found, {"missing_when": [m.describe() for m in found]}


class MissingWhenSet:
    """Columns missing exactly when a category has one value: which rows break it."""

    def __init__(self, rules: list[MissingWhen]) -> None:
        self.rules = list(rules)

    def __len__(self) -> int:
        return len(self.rules)

    def violations(self, df: pd.DataFrame) -> pd.DataFrame:
        """Which rows break which relation.

        A row breaks one where the category has the value and a column is present, or has
        another value (or none) and a column is missing.
        """
        out = {}
        for m in self.rules:
            miss = df[list(m.columns)].isna().to_numpy()
            at = (df[m.by] == m.value).to_numpy()
            out[m.describe()] = np.where(at, ~miss.all(axis=1), miss.any(axis=1))
        return pd.DataFrame(out, index=df.index, dtype=bool)
