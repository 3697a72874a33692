"""Column domains for prompted generation: the ranges the checks enforce and the prompt states.

With a few dozen real rows, the observed minimum and maximum of a column are not the
population's: rows from the same population fall outside them all the time, and stating them in
a prompt shows the most extreme patients' values. So each bound of a numeric, whole-number or
date column comes from the first of these sources that has one:

``given``
    ``domains={"column": (low, high)}`` (either side may be None).
``rules``
    A clinical rule that always applies and bounds the column (``range: {column: age, min: 18}``).
``knowledge``
    The plausible range ``[low, high]`` a code mapping of :mod:`healthsynth.knowledge` gives for
    an item of the column's name (``code_map="pbcseq"``: ``bili`` 0 to 60 mg/dL ...).
``schema``
    The schema's bound, when it lies beyond every real row: a declaration (an edited schema, or
    one inferred from a larger table), not an observation of these rows.
``widened``
    The real rows' extreme, moved out by ``widen`` standard deviations of the column (default
    3), kept at 0 when no real value is negative, then rounded outward to two significant
    digits of the range's width (whole numbers for whole-number columns, whole days for dates).
    When every real row holds the same value, 10% of it stands in for the standard deviation,
    at least one unit (1 for whole numbers, a step of the column's precision, 30 days).
``observed``
    ``widen=0``: the real rows' extreme itself.

What is *enforced* is the bound itself. What is *shown* (the prompt's words and the JSON
schema sent as the response format) is the same, except that ``schema`` and ``observed`` bounds,
which may be real patients' values, are rounded outward to one significant digit of the range's
width (to whole months for dates) unless ``reveal_ranges`` is on; with ``reveal_ranges`` the
prompt also states the real rows' own range.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
import pandas as pd

from healthsynth.data import Schema
from healthsynth.errors import ParameterError

__all__ = [
    "DEFAULT_WIDEN",
    "SOURCES",
    "Domain",
    "as_code_map",
    "derived_items",
    "domains_from_dict",
    "observed_ranges",
    "resolve_domains",
    "schema_domains",
    "shown_domains",
    "with_domains",
]

#: where a bound can come from, in the order they are tried
SOURCES = ("given", "rules", "knowledge", "schema", "widened", "observed")
#: standard deviations a data-driven range reaches beyond the real rows
DEFAULT_WIDEN = 3.0
#: sources whose bounds may be real patients' values (rounded outward when shown)
_REAL_VALUED = ("schema", "observed")
_RANGED = ("numeric", "integer", "datetime")


@dataclass(frozen=True)
class Domain:
    """The enforced range of one column and where each bound came from.

    ``low``/``high`` are numbers, or ISO strings for date columns; None means unbounded.
    """

    low: float | str | None
    high: float | str | None
    low_source: str
    high_source: str

    @property
    def source(self) -> str:
        """One word when both bounds share a source, else ``"low: A, high: B"``."""
        if self.low_source == self.high_source:
            return self.low_source
        return f"low: {self.low_source}, high: {self.high_source}"

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form (what the model folder and the sampling record hold)."""
        return {
            "low": self.low,
            "high": self.high,
            "source": self.source,
            "low_source": self.low_source,
            "high_source": self.high_source,
        }


def domains_from_dict(d: Mapping[str, Any], schema: Schema) -> dict[str, Domain]:
    """Domains read back from :meth:`Domain.to_dict` records, checked against ``schema``."""
    out = {}
    for name, rec in d.items():
        if name not in schema or schema[name].kind not in _RANGED or not isinstance(rec, Mapping):
            raise ParameterError(f"the stored domain of column {name!r} is not a column's range")
        sources = (rec.get("low_source"), rec.get("high_source"))
        if any(s not in SOURCES for s in sources):
            raise ParameterError(f"the stored domain of column {name!r} has an unknown source")
        out[name] = Domain(rec.get("low"), rec.get("high"), str(sources[0]), str(sources[1]))
    return out


def schema_domains(schema: Schema) -> dict[str, Domain]:
    """Domains of a folder saved before domains existed: the saved schema's ranges."""
    return {
        c.name: Domain(c.minimum, c.maximum, "schema", "schema")
        for c in schema.modelled
        if c.kind in _RANGED
    }


def as_code_map(code_map: Any) -> Any:
    """A :class:`~healthsynth.knowledge.CodeMap` from a packaged name, a CSV path, or itself."""
    if code_map is None:
        return None
    from pathlib import Path

    from healthsynth.knowledge import CodeMap, load_code_map

    if isinstance(code_map, CodeMap):
        return code_map
    if isinstance(code_map, (str, Path)):
        return load_code_map(code_map)
    raise ParameterError(
        "code_map must be a packaged mapping name, a mapping CSV path or a CodeMap; got "
        f"{type(code_map).__name__}"
    )


# -- resolution ---------------------------------------------------------------------------------
def resolve_domains(
    data: pd.DataFrame,
    schema: Schema,
    *,
    given: Mapping[str, Any] | None = None,
    rules: Any = None,
    code_map: Any = None,
    widen: float = DEFAULT_WIDEN,
) -> dict[str, Domain]:
    """The domain of every modelled numeric, whole-number and date column (see the module docs).

    Parameters
    ----------
    data
        The real rows.
    schema
        Their schema.
    given
        Column -> ``(low, high)`` declared by the user.
    rules
        A :class:`~healthsynth.knowledge.RuleSet` (its always-applying range rules count).
    code_map
        A :class:`~healthsynth.knowledge.CodeMap` (its ``low``/``high`` per item name count).
    widen
        Standard deviations a data-driven bound reaches beyond the real rows; 0 keeps the
        observed extreme.
    """
    declared = _given(given or {}, schema)
    ruled = _rule_bounds(rules)
    known = _knowledge_bounds(code_map)
    out = {}
    for c in schema.modelled:
        if c.kind not in _RANGED:
            continue
        dates = c.kind == "datetime"
        x = _as_numbers(data[c.name], dates=dates)
        data_lo, data_hi = _data_range(x, widen=widen, step_at_least=_step_floor(c), dates=dates)
        obs_lo = float(x.min()) if len(x) else None
        obs_hi = float(x.max()) if len(x) else None
        bounds: list[Any] = []
        sources: list[str] = []
        for side, obs, fallback in ((0, obs_lo, data_lo), (1, obs_hi, data_hi)):
            schema_b = _as_number(c.minimum if side == 0 else c.maximum, dates=dates)
            beyond = (
                schema_b is not None
                and obs is not None
                and (schema_b < obs if side == 0 else schema_b > obs)
            )
            candidates: list[tuple[str, Any]] = [
                ("given", declared.get(c.name, (None, None))[side]),
                ("rules", None if dates else ruled.get(c.name, (None, None))[side]),
                ("knowledge", None if dates else known.get(c.name, (None, None))[side]),
                ("schema", schema_b if beyond or obs is None else None),
                ("widened" if widen else "observed", fallback),
            ]
            source, value = next(((s, v) for s, v in candidates if v is not None), ("none", None))
            bounds.append(value)
            sources.append(source if source != "none" else ("widened" if widen else "observed"))
        low, high = bounds
        if low is not None and high is not None and low > high:
            raise ParameterError(
                f"the domain of column '{c.name}' comes out empty ({_show(low, dates)} from "
                f"{sources[0]} is above {_show(high, dates)} from {sources[1]}); check domains= "
                "and the rules for that column"
            )
        out[c.name] = Domain(
            _stored(low, c, dates), _stored(high, c, dates), sources[0], sources[1]
        )
    return out


def _given(given: Mapping[str, Any], schema: Schema) -> dict[str, tuple[Any, Any]]:
    if not isinstance(given, Mapping):
        raise ParameterError(
            "domains must map column names to (low, high) pairs (--range COLUMN=LOW..HIGH); "
            f"got {type(given).__name__}"
        )
    out = {}
    for name, pair in given.items():
        if name not in schema or schema[name].kind not in _RANGED:
            ranged = [c.name for c in schema.modelled if c.kind in _RANGED]
            raise ParameterError(
                f"domains (--range) names {name!r}, which is not a numeric, whole-number or "
                f"date column; give one of: {', '.join(ranged) or '(none)'}"
            )
        dates = schema[name].kind == "datetime"
        if not isinstance(pair, (tuple, list)) or len(pair) != 2:
            raise ParameterError(
                f"domains[{name!r}] must be a (low, high) pair (None for an open side); "
                f"got {pair!r}"
            )
        try:
            lo, hi = (_as_number(v, dates=dates, strict=True) for v in pair)
        except (TypeError, ValueError):
            raise ParameterError(
                f"domains[{name!r}] must hold two {'dates' if dates else 'numbers'} or None; "
                f"got {pair!r}"
            ) from None
        if lo is not None and hi is not None and lo > hi:
            raise ParameterError(f"domains[{name!r}] has its low above its high: {pair!r}")
        out[name] = (lo, hi)
    return out


def _rule_bounds(rules: Any) -> dict[str, tuple[float | None, float | None]]:
    """The tightest bounds the always-applying range rules set per column."""
    out: dict[str, tuple[float | None, float | None]] = {}
    for r in rules or ():
        p = r.then
        if r.when or p.kind != "range":
            continue
        lo, hi = out.get(p.column, (None, None))
        if p.minimum is not None:
            lo = float(p.minimum) if lo is None else max(lo, float(p.minimum))
        if p.maximum is not None:
            hi = float(p.maximum) if hi is None else min(hi, float(p.maximum))
        out[p.column] = (lo, hi)
    return out


def _knowledge_bounds(code_map: Any) -> dict[str, tuple[float | None, float | None]]:
    """The widest plausible range a code mapping gives per item name (any table)."""
    out: dict[str, tuple[float | None, float | None]] = {}
    if code_map is None:
        return out
    for e in code_map.entries.values():
        if e.low is None and e.high is None:
            continue
        lo, hi = out.get(str(e.item), (e.low, e.high))
        lo = e.low if lo is None else (lo if e.low is None else min(lo, e.low))
        hi = e.high if hi is None else (hi if e.high is None else max(hi, e.high))
        out[str(e.item)] = (lo, hi)
    return out


def _as_numbers(s: pd.Series, *, dates: bool) -> np.ndarray:
    if dates:
        t = pd.to_datetime(s, errors="coerce", utc=True, format="mixed").dropna()
        return (t.astype("int64") / 86_400e9).to_numpy(float)  # days since 1970
    return pd.to_numeric(s, errors="coerce").dropna().to_numpy(float)


def _as_number(v: Any, *, dates: bool, strict: bool = False) -> float | None:
    """A bound as a number (days since 1970 for dates); None stays None."""
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return None
    if dates:
        t = pd.Timestamp(v)
        t = t.tz_localize("UTC") if t.tz is None else t.tz_convert("UTC")
        return float(t.value / 86_400e9)
    if strict and (isinstance(v, bool) or not isinstance(v, (int, float, np.number))):
        raise TypeError(v)
    f = float(v)
    if strict and not math.isfinite(f):
        raise ValueError(v)
    return f


def _step_floor(c: Any) -> float:
    """The smallest rounding step a column's values can show: 1 for whole numbers."""
    if c.kind == "integer" or c.precision == 0:
        return 1.0
    return 10.0**-c.precision if c.precision is not None else 0.0


def _data_range(
    x: np.ndarray, *, widen: float, step_at_least: float, dates: bool
) -> tuple[float | None, float | None]:
    """The observed range, widened by ``widen`` standard deviations and rounded outward."""
    if not len(x):
        return None, None
    lo, hi = float(x.min()), float(x.max())
    if not widen:
        return lo, hi
    sd = float(x.std(ddof=1)) if len(x) > 1 else 0.0
    if sd == 0:
        # one value in every real row (a 0/1 column that is all 0 in 40 rows): the spread is
        # unknown, so 10% of the value stands in, at least one unit of the column
        unit = 30.0 if dates else (step_at_least or 0.1)
        sd = max(0.1 * abs(hi), unit)
    wlo, whi = lo - widen * sd, hi + widen * sd
    if lo >= 0:
        wlo = max(wlo, 0.0)
    if dates:
        return math.floor(wlo), math.ceil(whi)
    return round_outward(wlo, whi, step_at_least=step_at_least)


def round_outward(
    lo: float, hi: float, *, step_at_least: float = 0.0, digits: int = 2
) -> tuple[float, float]:
    """``[lo, hi]`` widened to multiples of a step of ``digits`` significant digits of its width.

    The step is a power of ten, at least ``step_at_least`` (1 for whole numbers); a range of
    zero width takes its step from the value's own size.

    >>> round_outward(0.085, 2.288)
    (0.0, 2.3)
    >>> round_outward(21.0, 81.0, step_at_least=1.0)
    (21.0, 81.0)
    >>> round_outward(38.0, 110.0, digits=1)
    (30.0, 110.0)
    >>> round_outward(-3.14159, 196.2)
    (-10.0, 200.0)
    """
    width = hi - lo
    scale = width if width > 0 else max(abs(lo), abs(hi))
    step = 10.0 ** (math.floor(math.log10(scale)) + 1 - digits) if scale > 0 else 1.0
    step = max(step, step_at_least)
    decimals = max(0, -math.floor(math.log10(step)))
    a = round(math.floor(lo / step + 1e-9) * step, decimals)
    b = round(math.ceil(hi / step - 1e-9) * step, decimals)
    return float(a), float(b)


def _stored(v: float | None, c: Any, dates: bool) -> Any:
    """A bound in the schema's own terms: an ISO date, an int, or a float."""
    if v is None:
        return None
    if dates:
        t = pd.Timestamp(round(v * 86_400e9), unit="ns", tz="UTC")
        zone = _zone(c)
        return (t.tz_convert(zone) if zone else t.tz_localize(None)).isoformat()
    if c.kind == "integer" and float(v).is_integer():
        return int(v)
    return float(v)


def _zone(c: Any) -> Any:
    for b in (c.minimum, c.maximum):
        if b is not None:
            t = pd.Timestamp(b)
            if t.tz is not None:
                return t.tz
    return None


def _show(v: float, dates: bool) -> str:
    if dates:
        return str(pd.Timestamp(round(v * 86_400e9), unit="ns").date())
    return f"{v:g}"


# -- use ----------------------------------------------------------------------------------------
def with_domains(schema: Schema, domains: Mapping[str, Domain]) -> Schema:
    """``schema`` with each ranged column's minimum and maximum set to its domain."""
    cols = tuple(
        replace(c, minimum=domains[c.name].low, maximum=domains[c.name].high)
        if c.name in domains
        else c
        for c in schema.columns
    )
    return Schema(columns=cols, version=schema.version, metadata=dict(schema.metadata))


def observed_ranges(data: pd.DataFrame, schema: Schema) -> dict[str, tuple[Any, Any]]:
    """The real rows' own minimum and maximum per ranged column (shown with ``reveal_ranges``)."""
    out = {}
    for c in schema.modelled:
        if c.kind not in _RANGED:
            continue
        dates = c.kind == "datetime"
        x = _as_numbers(data[c.name], dates=dates)
        if len(x):
            out[c.name] = (_stored(float(x.min()), c, dates), _stored(float(x.max()), c, dates))
    return out


def shown_domains(schema: Schema, domains: Mapping[str, Domain], *, reveal_ranges: bool) -> Schema:
    """The schema whose ranges are *shown* to the model (prompt and JSON schema).

    Without ``reveal_ranges``, bounds that may be real values (sources ``schema`` and
    ``observed``) are rounded outward to one significant digit of the width; every other bound
    is shown as enforced.
    """
    if reveal_ranges:
        return with_domains(schema, domains)
    shown = {}
    for name, d in domains.items():
        c = schema[name]
        dates = c.kind == "datetime"
        lo, hi = _as_number(d.low, dates=dates), _as_number(d.high, dates=dates)
        real_lo = lo is not None and d.low_source in _REAL_VALUED
        real_hi = hi is not None and d.high_source in _REAL_VALUED
        if dates:
            lo = _month_floor(lo) if real_lo and lo is not None else lo
            hi = _month_ceil(hi) if real_hi and hi is not None else hi
        elif real_lo or real_hi:
            a = lo if lo is not None else hi
            b = hi if hi is not None else lo
            ra, rb = round_outward(
                float(a),  # type: ignore[arg-type]
                float(b),  # type: ignore[arg-type]
                step_at_least=_step_floor(c),
                digits=1,
            )
            lo = ra if real_lo else lo
            hi = rb if real_hi else hi
        shown[name] = Domain(
            _stored(lo, c, dates), _stored(hi, c, dates), d.low_source, d.high_source
        )
    return with_domains(schema, shown)


def _month_floor(days: float) -> float:
    t = pd.Timestamp(round(days * 86_400e9), unit="ns")
    return float(pd.Timestamp(t.year, t.month, 1).value / 86_400e9)


def _month_ceil(days: float) -> float:
    t = pd.Timestamp(round(days * 86_400e9), unit="ns")
    first = pd.Timestamp(t.year, t.month, 1)
    if first == t:
        return days
    return float((first + pd.DateOffset(months=1)).value / 86_400e9)


def derived_items(
    schema: Schema, domains: Mapping[str, Domain], *, reveal_ranges: bool
) -> dict[str, str]:
    """Column -> what a prompt states about it that was computed from the real rows.

    ``categories`` (the values a categorical column takes), ``observed range`` (with
    ``reveal_ranges``), ``widened range``, ``schema range`` or ``observed range, rounded`` (the
    source of a shown bound), and ``missing share``. Bounds from ``domains=``, the rules or a
    code mapping are not derived from the rows and are not listed.
    """
    out = {}
    for c in schema.modelled:
        items = []
        if c.kind in ("categorical", "boolean"):
            items.append("categories")
        elif c.name in domains:
            d = domains[c.name]
            if reveal_ranges:
                items.append("observed range")
            for s in dict.fromkeys((d.low_source, d.high_source)):
                if s == "widened":
                    items.append("widened range")
                elif s == "schema":
                    items.append("schema range" + ("" if reveal_ranges else ", rounded"))
                elif s == "observed" and not reveal_ranges:
                    items.append("observed range, rounded")
        if c.missing_rate > 0:
            items.append("missing share")
        if items:
            out[c.name] = "; ".join(dict.fromkeys(items))
    return out
