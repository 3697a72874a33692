"""Canary records: unique synthetic rows from the same domain as a table's rows.

A canary (Carlini et al. 2019) is a record inserted into the training data so that what a model
does with a one-of-a-kind patient can be measured. Here each column of a canary is drawn on its
own from that column's values in the data (missing values at their rate), so every value is
ordinary while the combination is new: the canary is unlike every real row. The candidates it
is ranked against are drawn the same way, so a model that never saw the canary ranks it like
any candidate.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from healthsynth.data import Schema
from healthsynth.data._rows import row_keys
from healthsynth.errors import DataError

__all__ = ["draw_records"]

#: Rounds of drawing before giving up on finding records unlike the data.
_MAX_ROUNDS = 50


def draw_records(
    data: pd.DataFrame,
    schema: Schema,
    n: int,
    rng: np.random.Generator,
    *,
    avoid: pd.DataFrame | None = None,
    rules: Any = None,
    unique: bool = True,
    label: str = "canary",
) -> pd.DataFrame:
    """``n`` rows whose modelled columns are drawn independently from ``data``'s columns.

    Parameters
    ----------
    data
        The real rows whose column values are drawn.
    schema
        Their schema (modelled columns are drawn; identifiers get new values, free text is
        left missing).
    n
        Rows to draw.
    rng
        The random generator.
    avoid
        Rows no drawn row may equal on the modelled columns (default: ``data``).
    rules
        A :class:`healthsynth.knowledge.RuleSet` every drawn row must satisfy.
    unique
        Whether the drawn rows must differ from each other.
    label
        Prefix of text identifiers (``canary-0001``).
    """
    cols = schema.modelled
    avoid = data if avoid is None else avoid
    seen = set(row_keys(avoid, cols))
    parts: list[pd.DataFrame] = []
    got = 0
    for _ in range(_MAX_ROUNDS):
        if got >= n:
            break
        m = 2 * (n - got) + 16
        block = pd.DataFrame(
            {
                c.name: data[c.name].iloc[rng.integers(0, len(data), m)].reset_index(drop=True)
                for c in cols
            }
        )
        if rules is not None and len(rules):
            block = block[~rules.violations(block).to_numpy().any(axis=1)]
        keep = []
        for i, key in enumerate(row_keys(block, cols)):
            if key in seen:
                continue
            if unique:
                seen.add(key)
            keep.append(i)
        block = block.iloc[keep[: n - got]]
        parts.append(block)
        got += len(block)
    if got < n:
        raise DataError(
            f"only {got} of {n} {label} records unlike every row of the data could be drawn "
            "(the table has too few distinct values, or its rules allow too little); ask for "
            "fewer"
        )
    out = pd.concat(parts, ignore_index=True)
    return _complete(out, data, schema, label)


def _complete(rows: pd.DataFrame, data: pd.DataFrame, schema: Schema, label: str) -> pd.DataFrame:
    """Add the columns that are not modelled: new identifiers, missing free text."""
    out: dict[str, Any] = {}
    for c in schema.columns:
        if c.name in rows:
            out[c.name] = rows[c.name].to_numpy()
        elif c.kind == "identifier":
            numbers = pd.to_numeric(data[c.name], errors="coerce")
            if numbers.notna().all() and len(numbers):
                start = int(numbers.max()) + 1
                out[c.name] = np.arange(start, start + len(rows)).astype(data[c.name].dtype)
            else:
                out[c.name] = [f"{label}-{i + 1:04d}" for i in range(len(rows))]
        else:
            out[c.name] = [None] * len(rows)
    frame = pd.DataFrame(out, columns=[c.name for c in schema.columns])
    for c in schema.columns:
        if c.name in rows:
            frame[c.name] = frame[c.name].astype(data[c.name].dtype)
    return frame
