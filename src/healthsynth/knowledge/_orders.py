"""Orders between columns ("a <= b"), learned from the training rows and kept in every sampled row.

Tables with several dates hold orders a model does not keep on its own: a follow-up date is
never before the date of acceptance, a death never before the diagnosis. A model that learns
each column's distribution well still writes such pairs the wrong way round whenever it draws
the two values from overlapping ranges (on survival/jasa, 34 % of rows before this existed).

At fit, :func:`learn_orders` keeps a pair of numeric columns (or of date columns) when their
values are ordered in every training row that has both, and when that order cannot be put down
to their ranges: had the two columns been independent, at least :data:`MIN_EXPECTED` of those
rows would have broken it (so a chance order in a small table, or one that the columns' ranges
already make certain, is left out). While decoding, ``_rules.RuleDecoder`` limits the later
column of a pair to tokens on the right side of the earlier one, and
``TableCodec.decode`` draws the two values inside their tokens' intervals in the pair's order,
so the order holds exactly, ties allowed.
"""

from __future__ import annotations

import graphlib
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from healthsynth.data import Schema
from healthsynth.errors import ParameterError

__all__ = [
    "ColumnOrder",
    "OrderSet",
    "as_numbers",
    "category_columns",
    "learn_orders",
    "plain_value",
    "resolve_orders",
]

#: Violations the training rows would show, were the two columns independent, before an order
#: is kept (none seen where 10 are expected: a chance of about 5e-5).
MIN_EXPECTED = 10.0
#: Rows with both values present before an order is considered.
MIN_ROWS = 20
#: Most orders kept (the strongest first); each one costs a comparison per decoding step.
MAX_ORDERS = 30

_GROUPS = {"numeric": "number", "integer": "number", "datetime": "date"}
_SPEC = re.compile(r"^\s*(.+?)\s*(<=|>=)\s*(.+?)\s*$")


@dataclass(frozen=True)
class ColumnOrder:
    """``low`` is at most ``high`` in every row that has both."""

    low: str
    high: str

    def describe(self) -> str:
        """The order as written in settings and records: ``"low <= high"``."""
        return f"{self.low} <= {self.high}"


class OrderSet:
    """Column orders that sampled rows must keep (missing values keep any order)."""

    def __init__(self, orders: Sequence[ColumnOrder], schema: Schema) -> None:
        self.orders = list(orders)
        self.schema = schema

    def __len__(self) -> int:
        return len(self.orders)

    def violations(self, df: pd.DataFrame) -> pd.DataFrame:
        """Which rows break which order: booleans, one column per order (``"a <= b"``)."""
        out = {}
        for o in self.orders:
            lo = as_numbers(df[o.low], self.schema[o.low].kind)
            hi = as_numbers(df[o.high], self.schema[o.high].kind)
            out[o.describe()] = np.isfinite(lo) & np.isfinite(hi) & (lo > hi)
        return pd.DataFrame(out, index=df.index, dtype=bool)


def category_columns(data: pd.DataFrame, schema: Schema) -> list[str]:
    """The modelled categorical and boolean columns that ``data`` holds."""
    return [
        c.name
        for c in schema.modelled
        if c.kind in ("categorical", "boolean") and c.name in data.columns
    ]


def plain_value(v: Any) -> Any:
    """A numpy scalar as the Python value it holds (for JSON and records)."""
    return v.item() if isinstance(v, np.generic) else v


def as_numbers(s: pd.Series, kind: str) -> np.ndarray:
    """Values as floats (dates as days since 1970), NaN where missing."""
    if kind == "datetime":
        t = pd.to_datetime(s, errors="coerce")
        days = (t - pd.Timestamp("1970-01-01")).dt.total_seconds().to_numpy(float) / 86400.0
        return np.where(t.isna().to_numpy(), np.nan, days)
    return pd.to_numeric(s, errors="coerce").to_numpy(float)


def _expected_breaks(lo: np.ndarray, hi: np.ndarray) -> float:
    """Rows with ``lo > hi`` expected if the two columns were drawn independently."""
    ranked = np.sort(hi)
    below = np.searchsorted(ranked, lo, side="left")  # values of hi strictly under each lo
    return float(below.sum()) / len(hi)


def learn_orders(data: pd.DataFrame, schema: Schema) -> tuple[list[ColumnOrder], dict[str, Any]]:
    """The orders between columns that hold in every row of ``data`` (see the module text).

    Returns the orders and a record of how they were chosen (for the training record).
    """
    cols = [c for c in schema.modelled if c.kind in _GROUPS and c.name in data.columns]
    values = {c.name: as_numbers(data[c.name], c.kind) for c in cols}
    found: list[tuple[float, ColumnOrder]] = []
    for i, a in enumerate(cols):
        for b in cols[i + 1 :]:
            if _GROUPS[a.kind] != _GROUPS[b.kind]:
                continue
            x, y = values[a.name], values[b.name]
            both = np.isfinite(x) & np.isfinite(y)
            if both.sum() < MIN_ROWS:
                continue
            x, y = x[both], y[both]
            if np.all(x <= y) and not np.all(x == y):
                found.append((_expected_breaks(x, y), ColumnOrder(a.name, b.name)))
            elif np.all(y <= x) and not np.all(x == y):
                found.append((_expected_breaks(y, x), ColumnOrder(b.name, a.name)))
    strong = sorted(
        ((e, o) for e, o in found if e >= MIN_EXPECTED), key=lambda eo: (-eo[0], eo[1].describe())
    )
    kept = _acyclic([o for _, o in strong[:MAX_ORDERS]])
    record = {
        "mode": "learn",
        "orders": [o.describe() for o in kept],
        "pairs_ordered_in_every_row": len(found),
        "left_out_as_chance_or_by_range": len(found) - len(strong),
        "min_expected_breaks": MIN_EXPECTED,
    }
    if len(strong) > MAX_ORDERS:
        record["left_out_over_limit"] = len(strong) - MAX_ORDERS
    return kept, record


def _acyclic(orders: list[ColumnOrder]) -> list[ColumnOrder]:
    """``orders`` less any that would close a cycle (possible only through missing values)."""
    kept: list[ColumnOrder] = []
    for o in orders:
        graph: dict[str, set[str]] = {}
        for k in [*kept, o]:
            graph.setdefault(k.high, set()).add(k.low)
        try:
            tuple(graphlib.TopologicalSorter(graph).static_order())
        except graphlib.CycleError:
            continue
        kept.append(o)
    return kept


def resolve_orders(
    spec: str | Sequence[str], data: pd.DataFrame, schema: Schema
) -> tuple[list[ColumnOrder], dict[str, Any]]:
    """The orders a fit keeps for the setting ``column_order``, and their record.

    ``"learn"`` learns them; ``"off"`` keeps none; otherwise the orders are the user's (a list
    of ``"a <= b"``, or one string of them separated by commas), each checked against ``data``.
    """
    if isinstance(spec, str) and spec.strip() == "learn":
        return learn_orders(data, schema)
    if isinstance(spec, str) and spec.strip() == "off":
        return [], {"mode": "off", "orders": []}
    items = spec.split(",") if isinstance(spec, str) else list(spec)
    orders = [_parse(item, schema) for item in items if str(item).strip()]
    if not orders:
        raise ParameterError(
            "parameter 'column_order' is empty; write 'learn', 'off', or orders such as "
            "'admitted <= discharged'"
        )
    for o in orders:
        _check_holds(o, data, schema)
    kept = _acyclic(orders)
    if len(kept) < len(orders):
        raise ParameterError(
            "parameter 'column_order' holds orders that contradict each other (a cycle); "
            "give each pair one direction"
        )
    return kept, {"mode": "given", "orders": [o.describe() for o in kept]}


def _parse(item: Any, schema: Schema) -> ColumnOrder:
    m = _SPEC.match(str(item))
    if not m:
        raise ParameterError(
            f"parameter 'column_order' has {item!r}; write 'learn', 'off', or orders such as "
            "'admitted <= discharged' separated by commas"
        )
    a, op, b = m.groups()
    low, high = (a, b) if op == "<=" else (b, a)
    if low == high:
        raise ParameterError(f"column order '{item}' compares column '{low}' with itself")
    for name in (low, high):
        if name not in schema.names or not schema[name].is_modelled:
            raise ParameterError(
                f"column order '{item}' names column '{name}', which is not a modelled column "
                "of the data"
            )
        if schema[name].kind not in _GROUPS:
            raise ParameterError(
                f"column order '{item}' names column '{name}', which is {schema[name].kind}; "
                "orders compare numeric or date columns"
            )
    if _GROUPS[schema[low].kind] != _GROUPS[schema[high].kind]:
        raise ParameterError(
            f"column order '{item}' compares a date column with a number; compare two dates or "
            "two numbers"
        )
    return ColumnOrder(low, high)


def _check_holds(o: ColumnOrder, data: pd.DataFrame, schema: Schema) -> None:
    lo = as_numbers(data[o.low], schema[o.low].kind)
    hi = as_numbers(data[o.high], schema[o.high].kind)
    bad = np.flatnonzero(np.isfinite(lo) & np.isfinite(hi) & (lo > hi))
    if len(bad):
        r = int(bad[0])
        raise ParameterError(
            f"column order '{o.describe()}' is broken by {len(bad)} of {len(data)} training "
            f"rows (the first is row {r}: {o.low}={data[o.low].iloc[r]}, "
            f"{o.high}={data[o.high].iloc[r]}); fix those rows or leave the order out"
        )
