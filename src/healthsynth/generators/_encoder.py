"""The table encoding of the generators that wrap an outside library.

:class:`TableEncoder` turns a table into the all-numeric form these libraries accept, and
generated rows back into values that are valid for the schema. Numbers (and dates, as days
since 1970) have their missing values replaced by the training median and get a 0/1 missing
flag column, learned like any other column, so missingness can depend on the other columns;
decoding puts a missing value wherever the flag says so. Categories become integer codes in
the order of the schema, with missing as a code of its own. Decoding rounds to each column's
precision, clips to the range seen in training and restores the training dtype.

:func:`condition_mask` says which decoded values satisfy a condition.
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd

from healthsynth.data import Schema
from healthsynth.data._schema import Column
from healthsynth.errors import ConditionError, DataError
from healthsynth.generators._conditions import Condition

__all__ = ["TableEncoder", "condition_mask"]

_EPOCH = pd.Timestamp("1970-01-01")


# -- encoding ----------------------------------------------------------------------------------
class TableEncoder:
    """Two-way map between a table and the all-numeric frame a library learns from.

    Use :meth:`fit` to build one from training data; the state is plain JSON
    (:meth:`to_dict` / :meth:`from_dict`).

    Attributes
    ----------
    numbers
        Library columns holding continuous values (imputed, never missing).
    categories
        Library columns holding integer codes: category codes and 0/1 missing flags.
    """

    def __init__(self, schema: Schema, specs: list[dict[str, Any]]) -> None:
        self.schema = schema
        self.specs = specs
        self.numbers: list[str] = []
        self.categories: list[str] = []
        for s in specs:
            if s["type"] == "number" and s["fixed"] is None:
                self.numbers.append(s["name"])
            if s["type"] == "category":
                self.categories.append(s["name"])
            if s.get("flag"):
                self.categories.append(s["flag"])
        self._by_name = {s["name"]: s for s in specs}

    @property
    def columns(self) -> list[str]:
        """All library columns, in table order (each flag right after its column)."""
        out: list[str] = []
        for s in self.specs:
            if s["type"] == "category" or (s["type"] == "number" and s["fixed"] is None):
                out.append(s["name"])
            if s.get("flag"):
                out.append(s["flag"])
        return out

    def spec(self, name: str) -> dict[str, Any]:
        """The encoding of schema column ``name``."""
        return self._by_name[name]

    # -- fitting --------------------------------------------------------------------------------
    @classmethod
    def fit(cls, data: pd.DataFrame, schema: Schema) -> TableEncoder:
        """Learn medians, ranges, seen codes and which columns need a missing flag."""
        taken = set(schema.names)
        specs: list[dict[str, Any]] = []
        for c in schema.modelled:
            s = data[c.name]
            if c.kind in ("categorical", "boolean"):
                codes = _codes(s, c)
                k = len(c.categories or ())
                has_missing = bool((codes == k).any())
                seen = sorted(int(v) for v in np.unique(codes))
                spec: dict[str, Any] = {
                    "name": c.name,
                    "type": "category",
                    "n_codes": k + (1 if has_missing else 0),
                    "missing_code": k if has_missing else None,
                    "seen": seen,
                }
                if len(seen) == 1:
                    spec = {"name": c.name, "type": "constant", "value": seen[0]}
                specs.append(spec)
                continue
            x = _to_float(s, c)
            present = x[~np.isnan(x)]
            distinct = np.unique(present)
            if len(present) == 0:
                specs.append({"name": c.name, "type": "constant", "value": None})
                continue
            if len(distinct) == 1 and len(present) == len(x):
                specs.append({"name": c.name, "type": "constant", "value": float(distinct[0])})
                continue
            flag = None
            if len(present) < len(x):
                flag = _free_name(f"{c.name}__missing", taken)
                taken.add(flag)
            spec = {
                "name": c.name,
                "type": "number",
                "fill": float(np.median(present)),
                "low": float(present.min()),
                "high": float(present.max()),
                "fixed": float(distinct[0]) if len(distinct) == 1 else None,
                "flag": flag,
            }
            if c.kind == "datetime":
                # dates stay dates; date-times are kept to the second
                spec["step"] = 1.0 if np.all(present == np.round(present)) else 1 / 86400
            specs.append(spec)
        return cls(schema, specs)

    def to_dict(self) -> dict[str, Any]:
        """JSON-serializable state."""
        return {"columns": self.specs}

    @classmethod
    def from_dict(cls, d: Mapping[str, Any], schema: Schema) -> TableEncoder:
        """Rebuild from :meth:`to_dict` output."""
        return cls(schema, [dict(s) for s in d["columns"]])

    # -- encode / decode ------------------------------------------------------------------------
    def encode(self, data: pd.DataFrame) -> pd.DataFrame:
        """The library frame: floats for numbers, int64 codes for categories and flags."""
        out: dict[str, Any] = {}
        for s in self.specs:
            col = self.schema[s["name"]]
            if s["type"] == "category":
                out[s["name"]] = _codes(data[s["name"]], col)
            elif s["type"] == "number":
                x = _to_float(data[s["name"]], col)
                miss = np.isnan(x)
                if s["fixed"] is None:
                    out[s["name"]] = np.where(miss, s["fill"], x)
                if s["flag"]:
                    out[s["flag"]] = miss.astype(np.int64)
        return pd.DataFrame(out, columns=self.columns, index=range(len(data)))

    def decode(self, frame: pd.DataFrame) -> pd.DataFrame:
        """Schema values from a library frame: rounded, clipped, missing re-applied, dtyped."""
        n = len(frame)
        out: dict[str, pd.Series] = {}
        for s in self.specs:
            col = self.schema[s["name"]]
            if s["type"] == "constant":
                if col.kind in ("categorical", "boolean"):
                    values = self._categories_of(col, s)
                    arr = np.empty(n, dtype=object)
                    arr[:] = [values[s["value"]]] * n
                    out[col.name] = _restore_dtype(pd.Series(arr), col)
                else:
                    v = np.nan if s["value"] is None else s["value"]
                    out[col.name] = _restore_dtype(pd.Series(np.full(n, v, float)), col)
                continue
            if s["type"] == "category":
                codes = pd.to_numeric(frame[s["name"]], errors="coerce").to_numpy(float)
                codes = np.nan_to_num(codes, nan=float(s["missing_code"] or 0))
                idx = np.clip(np.rint(codes), 0, s["n_codes"] - 1).astype(np.int64)
                pool = np.empty(s["n_codes"], dtype=object)
                pool[:] = self._categories_of(col, s)
                out[col.name] = _restore_dtype(pd.Series(pool[idx]), col)
                continue
            if s["fixed"] is None:
                x = pd.to_numeric(frame[s["name"]], errors="coerce").to_numpy(float)
            else:
                x = np.full(n, s["fixed"])
            miss = np.isnan(x)
            if s["flag"]:
                flag = pd.to_numeric(frame[s["flag"]], errors="coerce").to_numpy(float)
                miss |= np.nan_to_num(flag, nan=1.0) >= 0.5
            x = _round_clip(np.where(miss, s["fill"], x), s, col)
            out[col.name] = _restore_dtype(pd.Series(np.where(miss, np.nan, x)), col)
        return pd.DataFrame(out)

    def _categories_of(self, col: Column, s: Mapping[str, Any]) -> list[Any]:
        values: list[Any] = list(col.categories or ())
        if s["type"] == "constant" and s["value"] >= len(values):
            return [*values, None]
        if s.get("missing_code") is not None:
            values.append(None)
        return values

    # -- conditions -----------------------------------------------------------------------------
    def check_conditions(self, conds: Mapping[str, Condition]) -> None:
        """Refuse at once a condition that no value seen in training can meet."""
        for name, cond in conds.items():
            s = self.spec(name)
            col = self.schema[name]
            if col.kind in ("categorical", "boolean"):
                cats = list(col.categories or ())
                seen = [s["value"]] if s["type"] == "constant" else s["seen"]
                ok = [
                    i
                    for i in seen
                    if i < len(cats) and condition_mask(pd.Series([cats[i]]), cond, col)[0]
                ]
                if not ok:
                    raise ConditionError(
                        f"no value of column '{name}' seen in training satisfies {cond.describe()}"
                    )
                continue
            if cond.values is not None:
                continue
            if s["type"] == "constant":
                low = high = s["value"] if s["value"] is not None else math.nan
            else:
                low, high = s["low"], s["high"]
            if not (cond.low <= high and cond.high >= low):
                raise ConditionError(
                    f"no value of column '{name}' in its training range [{low}, {high}] "
                    f"satisfies {cond.describe()}"
                )

    def codes_satisfying(self, name: str, cond: Condition) -> list[int]:
        """Codes seen in training of categorical column ``name`` whose value meets ``cond``."""
        s = self.spec(name)
        col = self.schema[name]
        cats = list(col.categories or ())
        seen = [s["value"]] if s["type"] == "constant" else s["seen"]
        return [
            i for i in seen if i < len(cats) and condition_mask(pd.Series([cats[i]]), cond, col)[0]
        ]


def _codes(s: pd.Series, column: Column) -> np.ndarray:
    """Integer codes of a categorical column (missing -> number of categories)."""
    cats = list(column.categories or ())
    lookup: dict[Any, int] = {}
    for i, c in enumerate(cats):
        lookup.setdefault(c, i)
    by_text = {str(c): i for i, c in reversed(list(enumerate(cats)))}
    out = np.empty(len(s), dtype=np.int64)
    for j, v in enumerate(s.tolist()):
        if v is None or (isinstance(v, float) and math.isnan(v)) or v is pd.NA or v is pd.NaT:
            out[j] = len(cats)
            continue
        try:
            code = lookup.get(v)
        except TypeError:
            code = None
        if code is None:
            code = by_text.get(str(v))
        if code is None:
            raise DataError(
                f"column '{column.name}' holds {v!r}, which is not among its categories; "
                "check the data against the schema"
            )
        out[j] = code
    return out


def _to_float(s: pd.Series, column: Column) -> np.ndarray:
    if column.kind == "datetime":
        t = pd.to_datetime(s, errors="coerce")
        if getattr(t.dt, "tz", None) is not None:
            t = t.dt.tz_convert(None)
        days = (t - _EPOCH) / pd.Timedelta(days=1)
        return days.to_numpy(float)
    return pd.to_numeric(s, errors="coerce").to_numpy(float)


def _round_clip(x: np.ndarray, spec: Mapping[str, Any], column: Column) -> np.ndarray:
    low, high = spec["low"], spec["high"]
    x = np.clip(x, low, high)
    if column.kind == "datetime":
        step = spec.get("step", 1 / 86400)
        return np.clip(np.round(x / step) * step, low, high)
    prec = 0 if column.kind == "integer" else column.precision
    if prec is None:
        return x
    return np.clip(np.round(x, prec), low, high)


def _restore_dtype(s: pd.Series, column: Column) -> pd.Series:
    """Give generated values the dtype the training column had."""
    dtype = column.dtype
    has_na = bool(s.isna().any())
    if column.kind == "datetime":
        seconds = np.round(s.to_numpy(float) * 86400.0)
        out = pd.Series(_EPOCH + pd.to_timedelta(seconds, unit="s"))
        with contextlib.suppress(TypeError, ValueError):
            out = out.astype(dtype)
        return out
    if column.kind in ("categorical", "boolean"):
        if has_na and dtype.startswith(("int", "uint", "bool")):
            return s.astype(object)
        try:
            return s.astype(dtype)
        except (TypeError, ValueError):
            return s.astype(object)
    if dtype.startswith(("int", "uint")) and not has_na:
        return s.round().astype(dtype)
    if dtype.startswith(("Int", "UInt")):
        return s.round().astype(dtype)
    return s.astype("float64")


def _free_name(name: str, taken: set[str]) -> str:
    while name in taken:
        name += "_"
    return name


# -- conditions --------------------------------------------------------------------------------
def condition_mask(s: pd.Series, cond: Condition, column: Column) -> np.ndarray:
    """Which values of ``s`` (one column of decoded rows) satisfy ``cond``."""
    present = s.notna().to_numpy()
    if cond.values is not None:
        texts = {str(v) for v in cond.values}
        hit = s.isin(list(cond.values)).to_numpy() | s.astype(str).isin(texts).to_numpy()
        return hit & present
    if column.kind == "datetime":
        x = _to_float(s, column)
    else:
        x = pd.to_numeric(s, errors="coerce").to_numpy(float)
    with np.errstate(invalid="ignore"):
        return (x >= cond.low) & (x <= cond.high) & present
