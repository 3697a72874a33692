"""Predicates: a condition on one column (values, code prefixes or a numeric range)."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from healthsynth.data import Schema
from healthsynth.errors import ParameterError

if TYPE_CHECKING:
    from healthsynth.knowledge._rules import Rule

__all__ = ["Predicate", "normalize_code"]

_NUMERIC_KINDS = ("numeric", "integer")
_LISTED_KINDS = ("categorical", "boolean")
_DESCRIBE_MAX_ITEMS = 8


def normalize_code(code: Any) -> str:
    """Normalize a code for prefix matching: text, stripped, upper-case, without dots.

    Parameters
    ----------
    code
        A code such as ``"n40.1"`` or ``"N401"``.

    Returns
    -------
    str
        The normalized code, e.g. ``"N401"``.
    """
    return str(code).strip().upper().replace(".", "")


def _as_float(x: Any) -> float | None:
    """``x`` as a finite float, or None when it is not a number (booleans are not numbers)."""
    if isinstance(x, (bool, np.bool_)):
        return None
    try:
        f = float(x)
    except (TypeError, ValueError):
        return None
    return f if math.isfinite(f) else None


def _same_value(a: Any, b: Any) -> bool:
    """Whether data value ``a`` matches rule value ``b``: raw, as text, case-blind, as numbers.

    Numbers are compared only when at least one side is a number, not two pieces of text.
    """
    try:
        if a == b:
            return True
    except (TypeError, ValueError):  # e.g. arrays, odd objects
        pass
    sa, sb = str(a), str(b)
    if sa == sb or sa.strip().lower() == sb.strip().lower():
        return True
    if isinstance(a, str) and isinstance(b, str):  # codes such as "01" and "1" stay distinct
        return False
    fa, fb = _as_float(a), _as_float(b)
    return fa is not None and fb is not None and fa == fb


def _fmt_number(x: float) -> str:
    return str(int(x)) if float(x).is_integer() else repr(float(x))


def _fmt_items(items: Sequence[Any]) -> str:
    shown = ", ".join(str(v) for v in items[:_DESCRIBE_MAX_ITEMS])
    if len(items) > _DESCRIBE_MAX_ITEMS:
        shown += f", … ({len(items) - _DESCRIBE_MAX_ITEMS} more)"
    return shown


@dataclass(frozen=True)
class Predicate:
    """A condition on one column: membership in values, a code prefix, or a numeric range.

    Exactly one of ``values``, ``prefixes`` or the range (``minimum`` and/or ``maximum``) is set.
    A missing value never satisfies a predicate.

    Parameters
    ----------
    column
        Column the condition is about.
    values
        The value must equal one of these. Matching is forgiving about representation: a data
        value matches a listed value when they are equal, when their text is equal (so YAML
        ``"1"`` matches the integer ``1``), when their text is equal ignoring case and surrounding
        spaces (``True`` matches ``"true"``, ``"M"`` matches ``"m"``), or when both are the same
        number and at least one of them is a number, not text (``"1"`` matches ``1.0``, but the
        texts ``"01"`` and ``"1"`` stay distinct).
    prefixes
        The value, as text upper-cased without dots, must start with one of these. Prefixes are
        stored normalized the same way, so ``"N40"``, ``"n40"`` and ``"N4.0"`` are the same.
    minimum, maximum
        Inclusive numeric bounds; either may be None (unbounded). Values that are not numbers
        do not satisfy a range.
    """

    column: str
    values: tuple[Any, ...] | None = None
    prefixes: tuple[str, ...] | None = None
    minimum: float | None = None
    maximum: float | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.column, str) or not self.column:
            raise ParameterError(
                f"a predicate's column must be a non-empty column name; got {self.column!r}"
            )
        is_range = self.minimum is not None or self.maximum is not None
        n_set = sum([self.values is not None, self.prefixes is not None, is_range])
        if n_set != 1:
            raise ParameterError(
                f"predicate on column '{self.column}' must set exactly one of values, prefixes "
                f"or a range (minimum and/or maximum); got {n_set}"
            )
        if self.values is not None:
            values = tuple(self.values)
            if not values:
                raise ParameterError(
                    f"predicate on column '{self.column}': values must list at least one value"
                )
            if any(_is_missing(v) for v in values):
                raise ParameterError(
                    f"predicate on column '{self.column}': values may not contain a missing "
                    "value (null/NaN), since a missing value never satisfies a predicate"
                )
            object.__setattr__(self, "values", values)
        if self.prefixes is not None:
            raw = (self.prefixes,) if isinstance(self.prefixes, str) else tuple(self.prefixes)
            prefixes = tuple(dict.fromkeys(normalize_code(p) for p in raw))
            if not prefixes or any(p == "" for p in prefixes):
                raise ParameterError(
                    f"predicate on column '{self.column}': prefixes must be non-empty codes; "
                    f"got {list(raw)}"
                )
            object.__setattr__(self, "prefixes", prefixes)
        for bound in ("minimum", "maximum"):
            b = getattr(self, bound)
            if b is not None:
                f = _as_float(b)
                if f is None:
                    raise ParameterError(
                        f"predicate on column '{self.column}': {bound} must be a finite number; "
                        f"got {b!r}"
                    )
                object.__setattr__(self, bound, f)
        if self.minimum is not None and self.maximum is not None and self.minimum > self.maximum:
            raise ParameterError(
                f"predicate on column '{self.column}': minimum {_fmt_number(self.minimum)} is "
                f"greater than maximum {_fmt_number(self.maximum)}; swap them"
            )

    @property
    def kind(self) -> str:
        """``"values"``, ``"prefixes"`` or ``"range"``."""
        if self.values is not None:
            return "values"
        if self.prefixes is not None:
            return "prefixes"
        return "range"

    def matches(self, value: Any) -> bool:
        """Whether one value satisfies the predicate (a missing value never does).

        Parameters
        ----------
        value
            One cell value.

        Returns
        -------
        bool
        """
        if _is_missing(value):
            return False
        if self.values is not None:
            return any(_same_value(value, v) for v in self.values)
        if self.prefixes is not None:
            return normalize_code(value).startswith(self.prefixes)
        f = _as_float(value)
        if f is None:
            return False
        return (self.minimum is None or f >= self.minimum) and (
            self.maximum is None or f <= self.maximum
        )

    def holds(self, s: pd.Series) -> np.ndarray:
        """Whether each value of ``s`` satisfies the predicate.

        Parameters
        ----------
        s
            The column's values.

        Returns
        -------
        numpy.ndarray
            Boolean array, one entry per row; False where the value is missing.
        """
        if self.values is None and self.prefixes is None:
            x = pd.to_numeric(s, errors="coerce")
            if isinstance(x, pd.Series):
                x = x.to_numpy(dtype=float, na_value=np.nan)
            x = np.asarray(x, dtype=float)
            with np.errstate(invalid="ignore"):
                ok = np.isfinite(x)
                if self.minimum is not None:
                    ok &= x >= self.minimum
                if self.maximum is not None:
                    ok &= x <= self.maximum
            return ok
        # membership and prefixes: decide once per distinct value, then broadcast
        codes, uniques = pd.factorize(s, use_na_sentinel=True)
        if len(uniques) == 0:
            return np.zeros(len(s), dtype=bool)
        if self.prefixes is not None:
            norm = pd.Index(uniques).astype(str).str.strip().str.upper().str.replace(".", "")
            per_unique = np.asarray(norm.str.startswith(self.prefixes), dtype=bool)
        else:
            per_unique = np.fromiter((self.matches(u) for u in uniques), bool, len(uniques))
        return np.where(codes >= 0, per_unique[np.maximum(codes, 0)], False)

    def describe(self) -> str:
        """A short human reading, e.g. ``"sex in {male}"`` or ``"age in [12, 55]"``.

        Returns
        -------
        str
        """
        if self.values is not None:
            return f"{self.column} in {{{_fmt_items(self.values)}}}"
        if self.prefixes is not None:
            return f"{self.column} starts with {_fmt_items(self.prefixes)}"
        if self.minimum is not None and self.maximum is not None:
            return f"{self.column} in [{_fmt_number(self.minimum)}, {_fmt_number(self.maximum)}]"
        if self.minimum is not None:
            return f"{self.column} ≥ {_fmt_number(self.minimum)}"
        assert self.maximum is not None
        return f"{self.column} ≤ {_fmt_number(self.maximum)}"

    def to_dict(self) -> dict[str, Any]:
        """Return a JSON-serializable dict (only the fields that are set).

        Returns
        -------
        dict
        """
        d: dict[str, Any] = {"column": self.column}
        if self.values is not None:
            d["values"] = [_json_scalar(v) for v in self.values]
        if self.prefixes is not None:
            d["prefixes"] = list(self.prefixes)
        if self.minimum is not None:
            d["minimum"] = self.minimum
        if self.maximum is not None:
            d["maximum"] = self.maximum
        return d

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> Predicate:
        """Build a predicate from :meth:`to_dict` output.

        Parameters
        ----------
        d
            A dict with ``column`` and one of ``values``, ``prefixes``, ``minimum``/``maximum``.

        Returns
        -------
        Predicate
        """
        _check_keys(d, {"column", "values", "prefixes", "minimum", "maximum"}, "predicate")
        if "column" not in d:
            raise ParameterError("a predicate dict needs a 'column' key")
        return cls(
            column=d["column"],
            values=None if d.get("values") is None else tuple(d["values"]),
            prefixes=None if d.get("prefixes") is None else tuple(d["prefixes"]),
            minimum=d.get("minimum"),
            maximum=d.get("maximum"),
        )


def _is_missing(v: Any) -> bool:
    try:
        return bool(pd.isna(v))
    except (TypeError, ValueError):  # list-like values
        return False


def _json_scalar(v: Any) -> Any:
    return v.item() if isinstance(v, np.generic) else v


def _check_keys(d: Mapping[str, Any], allowed: set[str], what: str) -> None:
    unknown = sorted(str(k) for k in d if k not in allowed)
    if unknown:
        raise ParameterError(
            f"{what} dict has unknown keys {unknown}; allowed keys: {', '.join(sorted(allowed))}"
        )


def _predicate_problem(rule: Rule, p: Predicate, schema: Schema) -> str | None:
    where = f"rule '{rule.name}'"
    if p.column not in schema:
        return (
            f"{where} uses column '{p.column}', which is not in the data; the columns are: "
            f"{', '.join(schema.names)}"
        )
    col = schema[p.column]
    if p.kind == "range" and col.kind not in _NUMERIC_KINDS:
        return (
            f"{where} puts a numeric range on column '{p.column}', which is {col.kind}; ranges "
            "need a numeric or integer column"
        )
    if p.kind == "prefixes" and col.kind in (*_NUMERIC_KINDS, "boolean", "datetime"):
        return (
            f"{where} matches code prefixes in column '{p.column}', which is {col.kind}; "
            "prefixes need a column of codes (categorical, identifier or text)"
        )
    if p.kind == "values" and col.kind in _LISTED_KINDS and col.categories is not None:
        assert p.values is not None
        if not any(_same_value(c, v) for v in p.values for c in col.categories):
            return (
                f"{where} expects column '{p.column}' to be one of {{{_fmt_items(p.values)}}}, "
                f"but none of these is among its categories "
                f"({_fmt_items(list(col.categories))})"
            )
    return None
