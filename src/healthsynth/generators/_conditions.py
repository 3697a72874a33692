"""Parsing and checking sampling conditions against a schema.

Accepted forms (Python ``conditions=`` mapping, or CLI ``--condition`` strings):

* ``{"sex": "female"}`` / ``sex=female`` — one value;
* ``{"stage": [3, 4]}`` — any of several values;
* ``{"age": ">=60"}`` / ``age>=60`` — a bound (``>=``, ``>``, ``<=``, ``<``) on a numeric column;
* ``{"age": "60..70"}`` / ``age=60..70`` — a closed range.

On a date column the bounds are dates: ``admitted>=2020-01-01``,
``admitted=2020-01-01..2020-06-30``.
"""

from __future__ import annotations

import datetime
import re
from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
import pandas as pd

from healthsynth.data import Schema
from healthsynth.errors import ConditionError

__all__ = ["Condition", "as_date", "parse_condition_strings", "resolve_conditions"]


@dataclass(frozen=True)
class Condition:
    """A constraint on one column: a set of allowed values, or a closed numeric interval."""

    column: str
    values: tuple[Any, ...] | None = None
    low: float = -np.inf
    high: float = np.inf
    date: bool = False  # low and high are days since 1970 (a date column)

    def describe(self) -> str:
        """Human-readable form (dates as dates)."""
        if self.values is not None:
            return (
                f"{self.column} in {list(self.values)}"
                if len(self.values) > 1
                else (f"{self.column} = {self.values[0]!r}")
            )
        lo, hi = (as_date(self.low), as_date(self.high)) if self.date else (self.low, self.high)
        return f"{lo} <= {self.column} <= {hi}"


def as_date(days: float) -> str:
    """Days since 1970 as an ISO date (with the time when it is not midnight); ±inf as is."""
    if not np.isfinite(days):
        return str(days)
    t = pd.Timestamp("1970-01-01") + pd.to_timedelta(round(days * 86400.0), unit="s")
    return t.strftime("%Y-%m-%d") if t == t.normalize() else t.isoformat(sep=" ")


_CLI = re.compile(r"^\s*(?P<col>[^<>=!]+?)\s*(?P<op>>=|<=|==|=|>|<)\s*(?P<val>.*?)\s*$")
_OP_VALUE = re.compile(r"^\s*(?P<op>>=|<=|>|<)\s*(?P<val>.+?)\s*$")
_RANGE = re.compile(r"^\s*(?P<lo>[-+0-9.eE]+)\s*\.\.\s*(?P<hi>[-+0-9.eE]+)\s*$")
_DATE_RANGE = re.compile(r"^\s*(?P<lo>[-+0-9.eE:T ]+?)\s*\.\.\s*(?P<hi>[-+0-9.eE:T ]+?)\s*$")


def parse_condition_strings(items: list[str]) -> dict[str, Any]:
    """Turn CLI strings such as ``sex=female`` or ``age>=60`` into a conditions mapping."""
    out: dict[str, Any] = {}
    for item in items:
        m = _CLI.match(item)
        if not m or not m["val"]:
            raise ConditionError(
                f"condition '{item}' is not of the form COLUMN=VALUE, COLUMN>=NUMBER, "
                "COLUMN<=NUMBER or COLUMN=LOW..HIGH"
            )
        op, val = m["op"], m["val"]
        out[m["col"]] = val if op in ("=", "==") else f"{op}{val}"
    return out


def resolve_conditions(
    conditions: Mapping[str, Any] | None, schema: Schema
) -> dict[str, Condition]:
    """Check ``conditions`` against ``schema`` and return one :class:`Condition` per column."""
    if not conditions:
        return {}
    if not isinstance(conditions, Mapping):
        raise ConditionError(
            f"conditions must be a mapping of column to value; got {type(conditions).__name__}"
        )
    modelled = {c.name: c for c in schema.modelled}
    out: dict[str, Condition] = {}
    for name, raw in conditions.items():
        if name not in schema:
            raise ConditionError(
                f"condition column '{name}' is not in the data; valid columns: "
                f"{', '.join(modelled)}"
            )
        if name not in modelled:
            raise ConditionError(
                f"condition column '{name}' is an {schema[name].kind} column, which is not "
                f"generated from the data; condition on one of: {', '.join(modelled)}"
            )
        col = modelled[name]
        if col.kind in ("categorical", "boolean"):
            out[name] = _categorical(name, raw, list(col.categories or ()))
        else:
            out[name] = _numeric(name, raw, col.precision, col.kind)
    return out


def _categorical(name: str, raw: Any, cats: list[Any]) -> Condition:
    wanted = list(raw) if isinstance(raw, (list, tuple, set, frozenset)) else [raw]
    if (
        len(wanted) == 1
        and isinstance(wanted[0], str)
        and (_OP_VALUE.match(wanted[0]) or _RANGE.match(wanted[0]))
    ):
        lo, hi = _bounds(name, wanted[0], 0)
        nums = pd.to_numeric(pd.Series(cats, dtype=object), errors="coerce")
        if nums.isna().any():
            raise ConditionError(
                f"condition on '{name}' is a range, but '{name}' is categorical; use one of its "
                f"values: {', '.join(map(str, cats))}"
            )
        return Condition(name, low=lo, high=hi)
    resolved = []
    for w in wanted:
        match = [c for c in cats if c == w or str(c) == str(w) or _num_equal(c, w)]
        if not match:
            raise ConditionError(
                f"value {w!r} never occurs in column '{name}'; valid values: "
                f"{', '.join(map(str, cats))}"
            )
        resolved.append(match[0])
    return Condition(name, values=tuple(resolved))


def _numeric(name: str, raw: Any, precision: int | None, kind: str) -> Condition:
    cond = _numeric_bounds(name, raw, precision, kind)
    return replace(cond, date=True) if kind == "datetime" else cond


def _numeric_bounds(name: str, raw: Any, precision: int | None, kind: str) -> Condition:
    if (
        isinstance(raw, (list, tuple))
        and len(raw) == 2
        and all(isinstance(v, (int, float, np.number)) for v in raw)
    ):
        return Condition(name, low=float(raw[0]), high=float(raw[1]))
    if kind == "datetime" and isinstance(raw, (pd.Timestamp, np.datetime64, datetime.date)):
        v = (pd.Timestamp(raw) - pd.Timestamp("1970-01-01")).total_seconds() / 86400.0
        return Condition(name, low=v, high=v)
    if isinstance(raw, str):
        if kind == "datetime" and (_OP_VALUE.match(raw) or _DATE_RANGE.match(raw)):
            lo, hi = _bounds(name, raw, 0, date=True)
            return Condition(name, low=lo, high=hi)
        if _OP_VALUE.match(raw) or _RANGE.match(raw):
            lo, hi = _bounds(name, raw, precision or 0)
            return Condition(name, low=lo, high=hi)
        if kind == "datetime":
            try:
                v = _days(raw)
            except ValueError:
                raise ConditionError(
                    f"condition on date column '{name}' needs a date written YYYY-MM-DD (with "
                    f"a time if needed), a bound such as '>=2020-01-31' or a range such as "
                    f"'2020-01-01..2020-06-30'; got {raw!r}"
                ) from None
            return Condition(name, low=v, high=v)
    try:
        v = float(raw)
    except (TypeError, ValueError):
        raise ConditionError(
            f"condition on numeric column '{name}' must be a number, a bound such as '>=60', or "
            f"a range such as '60..70'; got {raw!r}"
        ) from None
    return Condition(name, low=v, high=v)


def _bounds(name: str, text: str, precision: int, *, date: bool = False) -> tuple[float, float]:
    """(low, high) of a bound or range; on a date column, in days since 1970."""
    step = 1.0 / 86400.0 if date else 10.0 ** (-precision)
    number = _days if date else float
    m = (_DATE_RANGE if date else _RANGE).match(text)
    m2 = _OP_VALUE.match(text)
    try:
        if m:
            lo, hi = number(m["lo"]), number(m["hi"])
        else:
            assert m2 is not None
            v = number(m2["val"])
    except ValueError:
        what = "a date written YYYY-MM-DD" if date else "a number"
        raise ConditionError(f"condition on '{name}' needs {what}: {text!r}") from None
    if m:
        if lo > hi:
            raise ConditionError(
                f"condition range on '{name}' is empty (its low end is above its high end): {text}"
            )
        return lo, hi
    return {
        ">=": (v, np.inf),
        ">": (v + step, np.inf),
        "<=": (-np.inf, v),
        "<": (-np.inf, v - step),
    }[m2["op"]]


#: A date as a condition takes it: ISO, year first (``01/06/1972`` could be June or January).
_ISO_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}(?:[ T]\d{2}:\d{2}(?::\d{2}(?:\.\d+)?)?)?$")


def _days(text: str) -> float:
    """An ISO date (YYYY-MM-DD, optionally with a time) as days since 1970; else ValueError."""
    text = text.strip()
    if not _ISO_DATE.match(text):
        raise ValueError(text)
    t = pd.to_datetime(text, errors="coerce")
    if pd.isna(t):
        raise ValueError(text)
    return (t - pd.Timestamp("1970-01-01")).total_seconds() / 86400.0


def _num_equal(a: Any, b: Any) -> bool:
    try:
        return float(a) == float(b)
    except (TypeError, ValueError):
        return False
