"""What a tabular-lm model folder keeps of the learned orders and sums, and their checks."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from healthsynth.errors import ModelFolderError
from healthsynth.knowledge import ColumnOrder, Relation, RelationSet
from healthsynth.knowledge._orders import as_numbers

__all__ = [
    "codec_ranges",
    "orders_state",
    "read_orders",
    "read_relations",
    "relation_set",
    "tie_chances",
]

#: Ties (equal values) an order's training rows must hold before their chance is kept.
MIN_TIES = 5


def tie_chances(
    data: pd.DataFrame, codec: Any, orders: list[ColumnOrder]
) -> dict[tuple[str, str], float]:
    """Per order whose training rows hold ties, the chance of a tie.

    The chance that the two values are equal, given that the two columns' token intervals meet
    (a tie always has meeting intervals). A progression time equals the follow-up time for
    everyone who did not progress (survival/mgus2: 92 % of rows); values drawn inside two
    intervals would almost never tie.
    """
    rows = data.reset_index(drop=True)
    local = codec.encode(rows, np.random.default_rng(0))
    names = [c.name for c in codec.columns]
    out: dict[tuple[str, str], float] = {}
    for o in orders:
        low = as_numbers(rows[o.low], codec.codecs[o.low].column.kind)
        high = as_numbers(rows[o.high], codec.codecs[o.high].column.kind)
        ties = np.isfinite(low) & (low == high)
        if ties.sum() < MIN_TIES:
            continue
        spans = []
        for name in (o.low, o.high):
            codes = [local[:, s] for s in codec.column_slots[names.index(name)]]
            a, b, miss, _ = codec.codecs[name].interval(codes, np.random.default_rng(0), None)
            spans.append((np.where(miss, np.nan, a), np.where(miss, np.nan, b)))
        (a1, b1), (a2, b2) = spans
        meet = (np.fmax(a1, a2) <= np.fmin(b1, b2)) & np.isfinite(a1) & np.isfinite(a2)
        out[(o.low, o.high)] = round(float(ties.sum() / max(meet.sum(), ties.sum())), 4)
    return out


def orders_state(orders: list[ColumnOrder], ties: dict[tuple[str, str], float]) -> list[Any]:
    """The orders as generator.json keeps them: ``[low, high]`` or ``[low, high, tie chance]``."""
    return [
        [o.low, o.high, ties[(o.low, o.high)]] if (o.low, o.high) in ties else [o.low, o.high]
        for o in orders
    ]


def read_orders(
    items: Any, codec: Any, folder: Path
) -> tuple[list[ColumnOrder], dict[tuple[str, str], float]]:
    """The column orders (and tie chances) a model folder saved (older folders have none)."""
    names = {c.name for c in codec.columns}
    try:
        orders = [ColumnOrder(str(item[0]), str(item[1])) for item in items]
        ties = {(str(i[0]), str(i[1])): float(i[2]) for i in items if len(i) == 3}
        if any(len(i) not in (2, 3) for i in items) or not all(0 <= q <= 1 for q in ties.values()):
            raise ValueError
    except (TypeError, ValueError, IndexError):
        orders = None
    if orders is None or any(o.low not in names or o.high not in names for o in orders):
        raise ModelFolderError(
            f"model folder {folder} is corrupted: generator.json's column orders are "
            "unreadable or name columns the model does not generate; fit the model again"
        )
    return orders, ties


def codec_ranges(codec: Any, names: Iterable[str]) -> dict[str, tuple[float, float]]:
    """Each column's training range as the codec holds it (days for dates)."""
    out = {}
    for n in names:
        cc = codec.codecs[n]
        if cc.mode == "continuous":
            out[n] = (float(cc.edges[0]), float(cc.edges[-1]))
        else:
            vals = np.asarray(cc.values, float)
            out[n] = (float(vals.min()), float(vals.max())) if len(vals) else (np.inf, -np.inf)
    return out


def relation_set(gen: Any) -> RelationSet | None:
    """The sums a fitted tabular-lm keeps (None: none)."""
    relations = getattr(gen, "relations_", None) or []
    if not relations:
        return None
    names = {n for r in relations for n in r.columns}
    return RelationSet(relations, gen.schema_, codec_ranges(gen.codec_, names))


def read_relations(items: Any, codec: Any, folder: Path) -> list[Relation]:
    """The exact sums a model folder saved (older folders have none)."""
    names = {c.name for c in codec.columns}
    try:
        relations = [Relation(str(t), str(a), str(c), float(m)) for t, a, c, m in items]
    except (TypeError, ValueError):
        relations = None
    if relations is None or any(not set(r.columns) <= names for r in relations):
        raise ModelFolderError(
            f"model folder {folder} is corrupted: generator.json's relations are unreadable "
            "or name columns the model does not generate; fit the model again"
        )
    return relations
