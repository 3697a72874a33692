"""One column of a table: its kind, domain and roles."""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import Any, Literal

import numpy as np

from healthsynth.errors import ParameterError

__all__ = [
    "KINDS",
    "RESOLUTIONS",
    "ROLES",
    "SIGNIFICANT_DIGITS",
    "Column",
    "Kind",
    "beyond_decimals",
]

KINDS = ("numeric", "integer", "categorical", "boolean", "datetime", "identifier", "text")
ROLES = ("target", "sensitive", "identifier", "group_key", "time")
#: Resolutions of a datetime column, from the coarsest.
RESOLUTIONS = ("day", "second")
#: Digits past this many significant ones are float noise (``0.30000000000000004`` is 0.3).
SIGNIFICANT_DIGITS = 10

Kind = Literal["numeric", "integer", "categorical", "boolean", "datetime", "identifier", "text"]


@dataclass(frozen=True)
class Column:
    """One column of a table.

    Parameters
    ----------
    name
        Column name as in the data.
    kind
        One of ``numeric`` (real numbers), ``integer``, ``categorical``, ``boolean``,
        ``datetime``, ``identifier`` (never learned; surrogates are generated) or ``text``
        (free text; left out of generation for now).
    missing_rate
        Share of missing values seen in the data the schema was inferred from.
    categories
        Allowed values of a categorical or boolean column, in the order first seen sorted.
    minimum, maximum
        Observed range of a numeric, integer or datetime column (datetimes as ISO strings).
    precision
        Number of decimals numeric values carry (0 for integers), and so the decimals generated
        values are rounded to: the fewest that hold at least 99 % of the real values (all of
        them when there are fewer than 100), digits past the 10th significant one ignored.
        ``None`` for computed quantities (more than 6 decimals).
    roles
        Any of ``target``, ``sensitive``, ``identifier``, ``group_key``, ``time``.
    dtype
        The pandas dtype the column had, so generated data can be given the same one.
    resolution
        Of a datetime column: ``day`` when every value is at midnight, ``second`` when every
        value is a whole second, else ``None``; generated dates are rounded to it.
    max_decimals
        When some real values carry more decimals than ``precision`` (at most 1 % of them), the
        most any of them carries; ``None`` when ``precision`` holds every value. Validation
        accepts values up to this many decimals, so the real data always passes; generated
        values are rounded to ``precision`` all the same.
    """

    name: str
    kind: Kind
    missing_rate: float = 0.0
    categories: tuple[Any, ...] | None = None
    minimum: float | str | None = None
    maximum: float | str | None = None
    precision: int | None = None
    roles: tuple[str, ...] = ()
    dtype: str = "object"
    resolution: str | None = None
    max_decimals: int | None = None

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ParameterError(
                f"column '{self.name}': kind must be one of {', '.join(KINDS)}; got '{self.kind}'"
            )
        bad = [r for r in self.roles if r not in ROLES]
        if bad:
            raise ParameterError(
                f"column '{self.name}': roles must be among {', '.join(ROLES)}; got {bad}"
            )
        if self.resolution is not None and self.resolution not in RESOLUTIONS:
            raise ParameterError(
                f"column '{self.name}': resolution must be one of {', '.join(RESOLUTIONS)} or "
                f"null; got {self.resolution!r}"
            )

    @property
    def is_modelled(self) -> bool:
        """Whether generators learn this column (identifiers and free text are not learned)."""
        return self.kind not in ("identifier", "text")

    def to_dict(self) -> dict[str, Any]:
        """Return a JSON-serializable dict."""
        d = asdict(self)
        d["categories"] = (
            None if self.categories is None else [_json_scalar(c) for c in self.categories]
        )
        d["roles"] = list(self.roles)
        return d

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> Column:
        """Build a column from :meth:`to_dict` output."""
        d = dict(d)
        if d.get("categories") is not None:
            d["categories"] = tuple(d["categories"])
        d["roles"] = tuple(d.get("roles", ()))
        known = {f for f in cls.__dataclass_fields__}
        unknown = set(d) - known
        if unknown:
            raise ParameterError(f"schema column has unknown fields {sorted(unknown)}")
        return cls(**d)


def beyond_decimals(values: np.ndarray, decimals: int) -> np.ndarray:
    """Which of ``values`` need more than ``decimals`` decimals to be written.

    Float noise is ignored: a value counts as having ``decimals`` decimals when rounding to them
    moves it by at most half a unit of its 10th significant digit, so ``0.30000000000000004``
    has one decimal and ``1.1 * 3`` too.
    """
    x = np.asarray(values, float)
    size = np.abs(np.where((x == 0) | ~np.isfinite(x), 1.0, x))
    noise = 0.5 * 10.0 ** (np.floor(np.log10(size)) - (SIGNIFICANT_DIGITS - 1))
    with np.errstate(invalid="ignore", over="ignore"):
        return np.abs(x - np.round(x, decimals)) > noise


def _py_scalar(v: Any) -> Any:
    if isinstance(v, np.generic):
        v = v.item()
    if isinstance(v, float) and v.is_integer() and abs(v) < 2**53:
        return v  # keep floats as floats; JSON keeps 1.0 distinct from 1
    return v


def _json_scalar(v: Any) -> Any:
    v = _py_scalar(v)
    if isinstance(v, float) and not math.isfinite(v):
        return None
    if isinstance(v, (str, int, float, bool)) or v is None:
        return v
    return str(v)
