"""Exact sums between columns ("b = a + m·c"), learned from the training rows and kept exactly.

Registries store a duration next to the dates it spans (survival/jasa: ``futime`` is
``fu.date - accept.dt`` in days, ``age`` is ``accept.dt - birth.dt`` in years), and studies
store a change next to its two measurements (causaldata/nhefs: ``wt82_71 = wt82 - wt71``). A
model that draws the three columns one at a time gets the sum only roughly right, and a user
who recomputes the duration from the synthetic dates finds it does not match.

At fit, :func:`learn_relations` finds every triple of columns with ``b = a + m·c`` in every
training row that has all three (at least :data:`MIN_ROWS` rows), to within the rounding of
the three columns: ``a`` and ``b`` both numbers with ``m = 1``, or both dates with ``c`` a number
of days, weeks, months or years (``m`` = 1, 7, 30.4375, 365.25 or 365). When rows are sampled,
:meth:`RelationSet.apply` overwrites the *sum* ``b`` with ``a + m·c`` (rounded as ``b`` is):
the duration or change ``c`` is what the model learned next to the outcome, so it is kept, and
the end date or follow-up value follows from it. A conditioned ``b`` is kept and ``c`` (or else
``a``) is derived instead. A derived value outside the column's training range marks the row
for drawing again, as a broken rule does.
"""

from __future__ import annotations

import graphlib
import itertools
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from healthsynth.data import Column, Schema
from healthsynth.knowledge._orders import as_numbers

__all__ = ["DATE_UNITS", "Relation", "RelationSet", "learn_relations"]

#: Rows with all three values present before a sum is considered.
MIN_ROWS = 20
#: Days in the unit of a duration column next to two dates.
DATE_UNITS = {"days": 1.0, "weeks": 7.0, "months": 30.4375, "years": 365.25, "years of 365": 365.0}
#: Most sums kept.
MAX_RELATIONS = 20
#: Rows screened first (the full check follows for the triples that pass).
_SCREEN = 256


@dataclass(frozen=True)
class Relation:
    """``total = start + scale · part`` in every row that has all three."""

    total: str
    start: str
    part: str
    scale: float = 1.0

    def describe(self) -> str:
        """The relation as written in records: ``"b = a + 365.25 * c"``."""
        factor = "" if self.scale == 1.0 else f"{self.scale:g} * "
        return f"{self.total} = {self.start} + {factor}{self.part}"

    @property
    def columns(self) -> tuple[str, str, str]:
        return (self.total, self.start, self.part)


def _step(c: Column) -> float:
    """The rounding step of a column's values (dates in days)."""
    if c.kind == "datetime":
        return {"day": 1.0, "second": 1.0 / 86400.0}.get(c.resolution or "", 1.0 / 86400.0)
    return 10.0 ** -(c.precision if c.precision is not None else 6)


def _tolerance(r: Relation, schema: Schema) -> float:
    """How far ``total - start - scale·part`` may be from 0: half the coarsest rounding step."""
    steps = (_step(schema[r.total]), _step(schema[r.start]), r.scale * _step(schema[r.part]))
    return 0.5 * max(steps) * (1 + 1e-6) + 1e-9


def learn_relations(data: pd.DataFrame, schema: Schema) -> tuple[list[Relation], dict[str, Any]]:
    """The sums that hold in every row of ``data`` (see the module text), and their record."""
    cols = [c for c in schema.modelled if c.kind in ("numeric", "integer", "datetime")]
    values = {c.name: as_numbers(data[c.name], c.kind) for c in cols}
    varied = {n for n, v in values.items() if np.isfinite(v).sum() >= 2 and np.nanstd(v) > 0}
    dates = [c for c in cols if c.kind == "datetime" and c.name in varied]
    numbers = [c for c in cols if c.kind != "datetime" and c.name in varied]
    candidates: list[Relation] = []
    for start, total in itertools.permutations(dates, 2):
        for part in numbers:
            candidates += [
                Relation(total.name, start.name, part.name, m) for m in DATE_UNITS.values()
            ]
    candidates += _number_sums(numbers, values)
    found = [r for r in candidates if _holds(r, values, schema, screen=True)]
    found = [r for r in found if _holds(r, values, schema, screen=False)]
    kept = _one_per_total(found)[:MAX_RELATIONS]
    return kept, {
        "mode": "learn",
        "relations": [r.describe() for r in kept],
        "sums_in_every_row": len(found),
    }


def _number_sums(numbers: list[Column], values: dict[str, np.ndarray]) -> list[Relation]:
    """Sums ``b = a + c`` of number columns that the first rows do not rule out.

    One pass per pair (a, c) over every b at once, on the first :data:`_SCREEN` rows: a table of
    60 number columns has 100,000 triples.
    """
    if len(numbers) < 3:
        return []
    names = [c.name for c in numbers]
    v = np.column_stack([values[n][:_SCREEN] for n in names])  # (rows, columns)
    steps = np.array([_step(c) for c in numbers])
    out = []
    for i, j in itertools.combinations(range(len(names)), 2):
        total = v[:, i] + v[:, j]
        tol = 0.5 * np.maximum(steps, max(steps[i], steps[j])) * (1 + 1e-6) + 1e-9
        present = np.isfinite(total)[:, None] & np.isfinite(v)
        close = np.abs(v - total[:, None]) <= tol[None, :]
        ok = (close | ~present).all(axis=0)  # no present row in the screen: the full check
        ok[[i, j]] = False
        out += [Relation(names[k], names[i], names[j]) for k in np.flatnonzero(ok)]
    return out


def _holds(r: Relation, values: dict[str, np.ndarray], schema: Schema, *, screen: bool) -> bool:
    b, a, c = values[r.total], values[r.start], values[r.part]
    if screen:
        b, a, c = b[:_SCREEN], a[:_SCREEN], c[:_SCREEN]
    ok = np.isfinite(a) & np.isfinite(b) & np.isfinite(c)
    if not screen and ok.sum() < MIN_ROWS:
        return False
    if not ok.any():
        return not screen  # too few rows in the screen to judge: the full check decides
    err = np.abs(b[ok] - a[ok] - r.scale * c[ok])
    return bool(err.max() <= _tolerance(r, schema)) and bool(np.any(c[ok] != 0))


def _one_per_total(found: list[Relation]) -> list[Relation]:
    """One relation per derived column, none derived from a column derived after it.

    ``b = a + c`` and ``b = c + a`` are the same sum: the first is kept. A sum whose total is
    another sum's input comes first; a set of sums that would derive each other is cut.
    """
    kept: list[Relation] = []
    seen: set[frozenset[str]] = set()
    for r in sorted(found, key=lambda r: (r.scale != 1.0, r.total, r.start, r.part)):
        triple = frozenset(r.columns)
        if triple in seen or any(k.total == r.total for k in kept):
            continue
        graph: dict[str, set[str]] = {}
        for k in [*kept, r]:
            graph.setdefault(k.total, set()).update((k.start, k.part))
        try:
            tuple(graphlib.TopologicalSorter(graph).static_order())
        except graphlib.CycleError:
            continue
        kept.append(r)
        seen.add(triple)
    return _in_order(kept)


def _in_order(relations: list[Relation]) -> list[Relation]:
    """``relations`` with every sum after the sums that derive its inputs."""
    by_total = {r.total: r for r in relations}
    graph = {r.total: {c for c in (r.start, r.part) if c in by_total} for r in relations}
    return [by_total[t] for t in graphlib.TopologicalSorter(graph).static_order()]


class RelationSet:
    """Sums that sampled rows keep exactly.

    :meth:`apply` makes them hold and :meth:`violations` checks them (a row missing one of the
    three values is not checked). ``ranges`` maps a column to its training (low, high), in days
    for dates.
    """

    def __init__(
        self,
        relations: list[Relation],
        schema: Schema,
        ranges: dict[str, tuple[float, float]],
    ) -> None:
        self.relations = _in_order(list(relations))
        self.schema = schema
        self.ranges = ranges

    def __len__(self) -> int:
        return len(self.relations)

    def violations(self, df: pd.DataFrame) -> pd.DataFrame:
        """Which rows break which sum: booleans, one column per relation."""
        out = {}
        for r in self.relations:
            b, a, c = (as_numbers(df[n], self.schema[n].kind) for n in r.columns)
            err = np.abs(b - a - r.scale * c)
            out[r.describe()] = np.isfinite(err) & (err > _tolerance(r, self.schema))
        return pd.DataFrame(out, index=df.index, dtype=bool)

    def apply(self, df: pd.DataFrame, fixed: Iterable[str] = ()) -> tuple[pd.DataFrame, np.ndarray]:
        """``df`` with every sum made to hold, and the rows where none could be (to draw again).

        In each row with all three values, the first of the sum, the part and the start whose
        derived value stays inside its column's training range is overwritten. ``fixed``
        columns (conditioned ones) are never overwritten, nor are the columns of a sum already
        made to hold (sums with conditioned columns first, then in dependency order), so no sum
        undoes another.
        """
        fixed = set(fixed)
        # sums with conditioned columns first: they have the fewest columns left to derive, and
        # a sum taken earlier fixes its columns for the later ones
        todo = sorted(self.relations, key=lambda r: -len(fixed & set(r.columns)))
        names = {n for r in self.relations for n in r.columns}
        vals = {n: as_numbers(df[n], self.schema[n].kind) for n in names}
        changed: set[str] = set()
        bad = np.zeros(len(df), bool)
        for r in todo:
            b, a, c = (vals[n] for n in r.columns)
            present = np.isfinite(a) & np.isfinite(b) & np.isfinite(c)
            done = ~present | (np.abs(b - a - r.scale * c) <= _tolerance(r, self.schema))
            derived = {
                r.total: a + r.scale * c,
                r.part: (b - a) / r.scale,
                r.start: b - r.scale * c,
            }
            for target in (r.total, r.part, r.start):
                if target in fixed:
                    continue
                x = _rounded(derived[target], self.schema[target])
                lo, hi = self.ranges[target]
                use = ~done & (x >= lo - 1e-9) & (x <= hi + 1e-9)
                if use.any():
                    vals[target] = np.where(use, x, vals[target])
                    changed.add(target)
                    done |= use
            bad |= ~done
            fixed |= set(r.columns)
        out = df.copy()
        for n in changed:
            out[n] = _as_column(vals[n], self.schema[n], out[n])
        return out, bad


def _rounded(x: np.ndarray, col: Column) -> np.ndarray:
    """``x`` at the column's precision (decimals) or resolution (whole days or seconds)."""
    if col.kind == "datetime":
        step = _step(col)
        return np.round(x / step) * step
    return np.round(x, col.precision if col.precision is not None else 6)


def _as_column(x: np.ndarray, col: Column, like: pd.Series) -> pd.Series:
    """Numbers (days for dates) back in the dtype the column's values have."""
    if col.kind == "datetime":
        t = pd.Timestamp("1970-01-01") + pd.to_timedelta(
            np.where(np.isfinite(x), np.round(x * 86400.0), 0.0), unit="s"
        )
        return pd.Series(t, index=like.index).mask(~np.isfinite(x))
    s = pd.Series(x, index=like.index)
    if pd.api.types.is_integer_dtype(like.dtype):
        return s.round().astype("Int64" if s.isna().any() else like.dtype)
    return s.astype(like.dtype if pd.api.types.is_float_dtype(like.dtype) else "float64")
