"""What one column is, read from its values: kind, categories, range and precision."""

from __future__ import annotations

import re
from typing import Any

import numpy as np
import pandas as pd

from healthsynth.data._column import Column, Kind, _py_scalar, beyond_decimals
from healthsynth.data._io import iso_datetimes
from healthsynth.errors import DataError

__all__ = ["DEFAULT_MAX_CATEGORIES", "PRECISION_COVERAGE", "infer_column"]

_ID_NAME = re.compile(
    r"(^|[._\s-])(id|ids|uuid|guid|mrn|rownames|row_?id|record_?(id|no|number))$"
    r"|^(patient|subject|person|case|record|encounter|visit)[._\s-]?(id|no|num|number)$",
    re.IGNORECASE,
)
_MAX_DECIMALS = 6
#: The precision of a column holds at least this share of its values (see :func:`_precision`).
PRECISION_COVERAGE = 0.99
#: More distinct strings than this in a column is refused unless the user raises the cap.
DEFAULT_MAX_CATEGORIES = 1000


def infer_column(
    s: pd.Series,
    name: str,
    *,
    forced_kind: Kind | None = None,
    max_categories: int = DEFAULT_MAX_CATEGORIES,
    source: str = "the data",
) -> Column:
    """The :class:`Column` of ``s``: its kind (``forced_kind`` or guessed) and its domain."""
    n = len(s)
    present = s.dropna()
    missing_rate = float(1 - len(present) / n) if n else 0.0
    dtype = str(s.dtype)
    kind = forced_kind or _guess_kind(s, present, name, max_categories, source)
    base: dict[str, Any] = {
        "name": name,
        "kind": kind,
        "missing_rate": round(missing_rate, 6),
        "dtype": dtype,
    }
    roles: tuple[str, ...] = ("identifier",) if kind == "identifier" else ()
    if kind in ("identifier", "text") or len(present) == 0:
        return Column(**base, roles=roles)
    if kind in ("categorical", "boolean"):
        values = present.unique().tolist()
        if len(values) > max_categories:
            raise DataError(
                f"column '{name}' in {source} has {len(values)} distinct values, more than "
                f"max_categories={max_categories}; declare it an identifier (--id {name}), "
                "drop it, or group its values"
            )
        cats = tuple(sorted((_py_scalar(v) for v in values), key=_sort_key))
        return Column(**base, categories=cats)
    if kind == "datetime":
        t = iso_datetimes(present)
        if t is None:
            t = pd.to_datetime(present, errors="coerce")
        if t.isna().any():
            raise DataError(
                f"column '{name}' in {source} was declared datetime but holds "
                f"{present[t.isna()].iloc[0]!r}, which is not a date"
            )
        return Column(
            **base,
            minimum=t.min().isoformat(),
            maximum=t.max().isoformat(),
            resolution=_resolution(t),
        )
    num = _to_numeric_or_fail(present, name, source)
    prec, most = (0, None) if kind == "integer" else _precision(num.to_numpy(float))
    return Column(
        **base,
        minimum=_py_scalar(num.min()),
        maximum=_py_scalar(num.max()),
        precision=prec,
        max_decimals=most,
    )


def _guess_kind(
    s: pd.Series, present: pd.Series, name: str, max_categories: int, source: str
) -> Kind:
    n_present, n_unique = len(present), present.nunique()
    if pd.api.types.is_bool_dtype(s.dtype):
        return "boolean"
    if pd.api.types.is_datetime64_any_dtype(s.dtype):
        return "datetime"
    if pd.api.types.is_numeric_dtype(s.dtype):
        vals = present.to_numpy(float)
        integral = bool(np.all(np.isfinite(vals)) and np.all(vals == np.round(vals)))
        if _ID_NAME.search(name) and integral and n_unique >= 0.1 * max(n_present, 1):
            return "identifier"
        if n_present and set(np.unique(vals)) <= {0.0, 1.0} and n_unique == 2:
            return "boolean"
        return "integer" if integral else "numeric"
    if isinstance(s.dtype, pd.CategoricalDtype):
        return "categorical"
    # object / string columns
    if n_present == 0:
        return "categorical"
    if iso_datetimes(present) is not None:
        return "datetime"  # ISO dates held as text (``read_table`` parses them on reading)
    strs = present.astype(str)
    if _ID_NAME.search(name) and n_unique >= 0.1 * n_present:
        return "identifier"
    num = pd.to_numeric(strs, errors="coerce")
    n_num = int(num.notna().sum())
    if n_num == n_present:
        vals = num.to_numpy(float)
        return "integer" if np.all(vals == np.round(vals)) else "numeric"
    if n_num >= 0.5 * n_present and n_unique > 10:
        bad = strs[num.isna()]
        raise DataError(
            f"column '{name}' in {source} mixes numbers and text (e.g. {bad.iloc[0]!r} at row "
            f"{bad.index[0]}); fix those values or declare the column categorical"
        )
    if n_present >= 20 and n_unique == n_present and strs.str.len().mean() < 40:
        return "identifier"
    long_text = strs.str.len().mean() > 40 and strs.str.count(" ").mean() >= 4
    if long_text and n_unique > 0.5 * n_present:
        return "text"
    if n_unique > max_categories:
        raise DataError(
            f"column '{name}' in {source} has {n_unique} distinct values, more than "
            f"max_categories={max_categories}; declare it an identifier (--id {name}), "
            "drop it, or group its values"
        )
    lowered = {v.strip().lower() for v in strs.unique()}
    if len(lowered) == 2 and lowered in ({"true", "false"}, {"yes", "no"}):
        return "boolean"
    return "categorical"


def _to_numeric_or_fail(present: pd.Series, name: str, source: str) -> pd.Series:
    num = pd.to_numeric(present, errors="coerce")
    if num.isna().any():
        bad = present[num.isna()]
        raise DataError(
            f"column '{name}' in {source} mixes numbers and text (e.g. {bad.iloc[0]!r} at row "
            f"{bad.index[0]}); fix those values or declare the column categorical"
        )
    vals = num.to_numpy(float)
    if not np.all(np.isfinite(vals)):
        raise DataError(
            f"column '{name}' in {source} holds infinite values; replace them with missing values"
        )
    return num


def _precision(vals: np.ndarray) -> tuple[int | None, int | None]:
    """The column's precision and, if some values carry more decimals, the most they carry.

    The precision is the fewest decimals (≤ 6) that hold at least 99 % of the values, float
    noise past the 10th significant digit ignored. Taking the most precise single value instead
    would let one odd entry (a lab value typed with an extra digit, a ratio stored at full float
    precision) give every synthetic value more decimals than the real data has, which marks it
    as synthetic. With fewer than 100 values every value must fit. ``(None, None)`` marks
    computed quantities such as BMI; they are generated with 6 decimals at most.
    """
    allowed = int(len(vals) * (1 - PRECISION_COVERAGE) + 1e-9)
    for d in range(_MAX_DECIMALS + 1):
        beyond = beyond_decimals(vals, d)
        n_beyond = int(beyond.sum())
        if n_beyond <= allowed:
            return d, (_most_decimals(vals[beyond], d) if n_beyond else None)
    return None, None


def _most_decimals(vals: np.ndarray, start: int) -> int:
    """The decimals the most precise of ``vals`` (each needing more than ``start``) carries."""
    d = start + 1
    while d < 300 and beyond_decimals(vals, d).any():
        d += 1
    return d


def _resolution(t: pd.Series) -> str | None:
    """``day`` when every date is at midnight, ``second`` when every one is a whole second."""
    if bool((t == t.dt.normalize()).all()):
        return "day"
    if bool(((t.dt.microsecond == 0) & (t.dt.nanosecond == 0)).all()):
        return "second"
    return None


def _sort_key(v: Any) -> tuple[int, Any]:
    if isinstance(v, bool):
        return (0, int(v))
    if isinstance(v, (int, float)):
        return (1, v)
    return (2, str(v))
