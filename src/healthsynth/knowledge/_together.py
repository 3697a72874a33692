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

from typing import Any

import numpy as np
import pandas as pd

from healthsynth.data import Schema

__all__ = ["MIN_EACH", "MissingTogether", "learn_missing_together"]

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
