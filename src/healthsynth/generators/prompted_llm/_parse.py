"""Reading an LLM's reply into rows, and keeping only the rows that fit the schema.

Nothing here raises on a bad reply: malformed text, a truncated reply, rows of the wrong shape
and values outside the schema are dropped and counted, so a run can report what it threw away.
"""

from __future__ import annotations

import csv
import io
import json
import re
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from healthsynth.data import Schema

__all__ = ["Parsed", "parse_reply", "valid_rows"]

_FENCE = re.compile(r"```[a-zA-Z]*\s*\n?(.*?)```", re.S)


@dataclass
class Parsed:
    """The row dicts found in a reply, and whether the text was broken."""

    rows: list[Any] = field(default_factory=list)
    #: the JSON or CSV was malformed (a repair may help)
    malformed: bool = False
    #: the reply stopped at the token limit; its last, cut row was dropped
    truncated: bool = False
    error: str = ""


def _unfence(text: str) -> str:
    """The inside of a Markdown code fence (also one cut off before its closing fence)."""
    m = _FENCE.search(text)
    if m:
        return m.group(1)
    start = text.find("```")
    if start >= 0:
        return text[start:].split("\n", 1)[1] if "\n" in text[start:] else ""
    return text


def parse_reply(
    text: str, *, fmt: str, truncated: bool = False, columns: Sequence[str] = ()
) -> Parsed:
    """Rows from a reply in ``fmt``: ``json`` (``{"rows": [...]}`` or a list) or ``csv``.

    A truncated JSON reply keeps the complete row objects before the cut. For CSV, ``columns``
    (the expected header) lets a line of chatter before the header be skipped.
    """
    body = _unfence(text).strip()
    if fmt == "csv":
        return _parse_csv(body, truncated=truncated, columns=columns)
    try:
        data = json.loads(body)
    except json.JSONDecodeError as e:
        rows = _salvage_objects(body)
        if truncated:
            return Parsed(rows=rows, truncated=True)
        return Parsed(rows=rows, malformed=True, error=f"{e.msg} at character {e.pos}")
    if isinstance(data, dict):
        listed = data.get("rows")
        if listed is None:
            lists = [v for v in data.values() if isinstance(v, list)]
            listed = lists[0] if len(lists) == 1 else None
        if listed is None:
            return Parsed(malformed=True, error='the JSON object has no "rows" list')
        data = listed
    if not isinstance(data, list):
        return Parsed(malformed=True, error="the JSON is not a list of rows")
    return Parsed(rows=list(data), truncated=truncated)


def _salvage_objects(body: str) -> list[Any]:
    """The complete values of the first JSON list in a text cut short (or otherwise broken)."""
    start = body.find("[")
    if start < 0:
        return []
    decoder = json.JSONDecoder()
    rows: list[Any] = []
    i = start + 1
    while True:
        while i < len(body) and body[i] in " \t\r\n,":
            i += 1
        if i >= len(body) or body[i] == "]":
            return rows
        try:
            obj, i = decoder.raw_decode(body, i)
        except json.JSONDecodeError:
            return rows
        rows.append(obj)


def _parse_csv(body: str, *, truncated: bool, columns: Sequence[str] = ()) -> Parsed:
    lines = [ln for ln in body.splitlines() if ln.strip()]
    if truncated and lines:
        lines = lines[:-1]
    if columns:
        wanted = {str(c).strip().lower() for c in columns}
        for i, line in enumerate(lines):
            cells = {x.strip().strip('"').lower() for x in line.split(",")}
            if len(cells & wanted) * 2 >= len(wanted):
                lines = lines[i:]
                break
    if not lines:
        return Parsed(truncated=truncated)
    lines = _same_width(lines)
    try:
        df = pd.read_csv(
            io.StringIO("\n".join(lines)),
            dtype=str,
            keep_default_na=False,
            skipinitialspace=True,
            on_bad_lines="skip",
            engine="python",
            # rows ending in a stray comma must not turn the first column into the index
            index_col=False,
        )
    except (pd.errors.ParserError, pd.errors.EmptyDataError, ValueError) as e:
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        return Parsed(malformed=True, error=first, truncated=truncated)
    df.columns = [str(c).strip() for c in df.columns]
    rows = [
        {k: (v.strip() or None) if isinstance(v, str) else None for k, v in r.items()}
        for r in df.to_dict("records")
    ]
    return Parsed(rows=rows, truncated=truncated)


def _same_width(lines: list[str]) -> list[str]:
    """The header and the rows with at most as many fields (a trailing empty field is cut off).

    A row with more fields than the header cannot be lined up with it (pandas would read rows
    that all have one field too many with their first column as the index, shifting every
    value one column to the left), so it is dropped, as pandas drops a bad line; a shorter row
    is kept, and later counted as missing a column.
    """
    width = len(_fields(lines[0]))
    kept = [lines[0]]
    for line in lines[1:]:
        row = _fields(line)
        if len(row) == width + 1 and not row[-1].strip():
            line = line.rstrip().removesuffix(",")
        elif len(row) > width:
            continue
        kept.append(line)
    return kept


def _fields(line: str) -> list[str]:
    try:
        return next(csv.reader([line], skipinitialspace=True), [])
    except csv.Error:
        return []


#: marks rows of a column that break a check (a mask) with the reason
_Fail = Callable[[np.ndarray, str], None]


def valid_rows(rows: Sequence[Any], schema: Schema) -> tuple[pd.DataFrame, Counter[str]]:
    """The rows that fit ``schema``'s modelled columns, converted to their types.

    Returns the valid rows (modelled columns, in schema order) and the reasons the others were
    dropped (``not a row``, ``missing COLUMN``, ``COLUMN out of domain`` ...), one count per row
    (its first problem).
    """
    cols = schema.modelled
    names = [c.name for c in cols]
    dropped: Counter[str] = Counter()
    dicts = []
    for r in rows:
        if isinstance(r, dict):
            dicts.append(r)
        else:
            dropped["not a row object"] += 1
    if not dicts:
        return pd.DataFrame({n: pd.Series(dtype=object) for n in names}), dropped
    raw = pd.DataFrame(dicts, index=range(len(dicts)))
    ok = np.ones(len(raw), bool)
    out: dict[str, Any] = {}
    reasons = np.full(len(raw), "", dtype=object)

    def fail(mask: np.ndarray, why: str) -> None:
        new = mask & ok
        reasons[new] = why
        ok[new] = False

    for c in cols:
        if c.name not in raw:
            fail(np.ones(len(raw), bool), f"missing {c.name}")
            out[c.name] = pd.Series([None] * len(raw), dtype=object)
            continue
        s = raw[c.name].astype(object).where(raw[c.name].notna(), None)
        s = s.map(lambda v: None if isinstance(v, str) and v.strip().lower() in _NULLS else v)
        absent = s.isna().to_numpy()
        if c.missing_rate == 0.0:
            fail(absent, f"missing {c.name}")
        if c.kind in ("numeric", "integer"):
            out[c.name] = _numbers(c, s, absent, fail)
        elif c.kind in ("categorical", "boolean"):
            out[c.name] = _categories(c, s, fail)
        elif c.kind == "datetime":
            out[c.name] = _dates(c, s, absent, fail)
        else:
            out[c.name] = s
    for why in reasons[~ok]:
        dropped[str(why)] += 1
    df = pd.DataFrame(out)[names].loc[ok].reset_index(drop=True)
    for c in cols:
        if (
            c.kind in ("integer", "categorical", "boolean")
            and c.dtype
            and not df[c.name].isna().any()
        ):
            try:
                df[c.name] = df[c.name].astype(c.dtype)
            except (TypeError, ValueError):
                pass
    return df, dropped


def _numbers(c: Any, s: pd.Series, absent: np.ndarray, fail: _Fail) -> pd.Series:
    """A numeric or whole-number column's values, failing rows off its type or domain."""
    num = pd.to_numeric(s.map(_number), errors="coerce")
    fail(num.isna().to_numpy() & ~absent, f"{c.name} not a number")
    x = num.to_numpy(float)
    if c.kind == "integer" or c.precision == 0:
        whole = np.isnan(x) | np.isclose(x, np.round(x), rtol=0, atol=1e-9)
        fail(~whole, f"{c.name} not a whole number")
        x = np.round(x)
    elif c.precision is not None:
        x = np.round(x, c.precision)
    with np.errstate(invalid="ignore"):
        if c.minimum is not None:
            fail(x < float(c.minimum) - 1e-9, f"{c.name} out of domain")
        if c.maximum is not None:
            fail(x > float(c.maximum) + 1e-9, f"{c.name} out of domain")
    return pd.Series(x)


def _categories(c: Any, s: pd.Series, fail: _Fail) -> pd.Series:
    """A categorical or boolean column's values, failing rows off its categories."""
    cats = list(c.categories or ())
    lookup = _category_lookup(cats, boolean=c.kind == "boolean")
    mapped = s.map(
        lambda v, lookup=lookup: lookup.get(_key(v), _UNKNOWN) if v is not None else None
    )
    fail(mapped.map(lambda v: v is _UNKNOWN).to_numpy(bool), f"{c.name} not a category")
    return mapped.map(lambda v: None if v is _UNKNOWN else v)


def _dates(c: Any, s: pd.Series, absent: np.ndarray, fail: _Fail) -> pd.Series:
    """A date column's values, failing rows that are not dates or off its domain."""
    # every value on its own format, compared in UTC; back in the column's own zone
    t = pd.to_datetime(s, errors="coerce", utc=True, format="mixed")
    fail(t.isna().to_numpy() & ~absent, f"{c.name} not a date")
    zone = None
    for bound, too_far in ((c.minimum, t.lt), (c.maximum, t.gt)):
        if bound is None:
            continue
        b = pd.Timestamp(bound)
        zone = zone or b.tz
        b = b.tz_localize("UTC") if b.tz is None else b.tz_convert("UTC")
        fail(too_far(b).to_numpy(bool), f"{c.name} out of domain")
    return t.dt.tz_convert(zone) if zone is not None else t.dt.tz_localize(None)


_NULLS = {"", "na", "nan", "null", "none", "n/a", "missing", "?"}
_UNKNOWN = object()


def _number(v: Any) -> Any:
    if isinstance(v, bool):
        return float("nan")
    if isinstance(v, str):
        return (
            v.strip().replace(",", "")
            if re.fullmatch(r"\s*[-+]?[\d,]*\.?\d+([eE][-+]?\d+)?\s*", v)
            else v
        )
    return v


def _key(v: Any) -> str:
    if isinstance(v, (bool, np.bool_)):
        return "true" if v else "false"
    if isinstance(v, (int, float, np.number)) and float(v).is_integer():
        return str(int(v))
    return str(v).strip().lower()


def _category_lookup(cats: list[Any], *, boolean: bool) -> dict[str, Any]:
    """Lower-cased text of each category -> the category (ambiguous spellings left out)."""
    seen: dict[str, list[Any]] = {}
    for cat in cats:
        seen.setdefault(_key(cat), []).append(cat)
    lookup = {k: v[0] for k, v in seen.items() if len(v) == 1}
    if boolean and len(cats) == 2:
        truthy = {"true", "yes", "y", "1"}
        falsy = {"false", "no", "n", "0"}
        kinds = [(_key(c) in truthy, _key(c) in falsy) for c in cats]
        if sorted(kinds) == [(False, True), (True, False)]:  # one category of each sense
            yes = cats[0] if kinds[0][0] else cats[1]
            no = cats[1] if kinds[0][0] else cats[0]
            for word in truthy:
                lookup.setdefault(word, yes)
            for word in falsy:
                lookup.setdefault(word, no)
    return lookup
