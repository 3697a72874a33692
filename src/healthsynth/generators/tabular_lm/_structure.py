"""What a tabular-lm model folder keeps of the learned orders and sums, and their checks."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from healthsynth.errors import ModelFolderError
from healthsynth.knowledge import (
    ColumnOrder,
    EqualWhen,
    MissingWhen,
    Relation,
    RelationSet,
    learn_missing_together,
    learn_missing_when,
    learn_relations,
    resolve_orders,
)
from healthsynth.knowledge._orders import as_numbers, plain_value

__all__ = [
    "TieChance",
    "category_token",
    "equal_when",
    "forced_ties",
    "codec_ranges",
    "keep",
    "learn",
    "read",
    "relation_set",
    "state",
    "tie_chances",
]


def learn(gen: Any, data: pd.DataFrame, schema: Any) -> dict[str, Any]:
    """What ``data`` holds: orders, sums and missing-together groups, and their record.

    Orders follow the ``column_order`` setting; sums and groups the ``relations`` setting.
    """
    orders, orders_record = resolve_orders(gen.column_order, data, schema)
    relations, groups, when = [], [], []
    relations_record: dict[str, Any] = {"mode": "off"}
    if gen.relations == "learn":
        relations, relations_record = learn_relations(data, schema)
        groups, together = learn_missing_together(data, schema)
        relations_record["missing_together"] = together["groups"]
        when, when_record = learn_missing_when(data, schema, groups)
        relations_record.update(when_record)
    return {
        "orders": orders,
        "relations": relations,
        "together": groups,
        "when": when,
        "record": {"column_order": orders_record, "relations": relations_record},
    }


def keep(gen: Any, learned: dict[str, Any] | None, data: pd.DataFrame | None = None) -> None:
    """Give ``gen`` what :func:`learn` found (``None``: nothing, as while it trains)."""
    learned = learned or {"orders": [], "relations": [], "together": [], "when": []}
    gen.column_orders_ = learned["orders"]
    gen.relations_ = learned["relations"]
    gen.missing_together_ = learned["together"]
    gen.missing_when_ = learned["when"]
    gen.order_ties_ = tie_chances(data, gen.codec_, gen.column_orders_) if data is not None else {}
    if gen.order_ties_ and "record" in learned:  # the training record lists them
        learned["record"]["column_order"]["ties"] = {
            f"{lo} <= {hi}": (
                {"chance": t.q}
                if t.by is None
                else {"by": t.by, "chances": t.chances, "otherwise": t.q}
            )
            for (lo, hi), t in gen.order_ties_.items()
        }


def state(gen: Any) -> dict[str, Any]:
    """What generator.json keeps of them (nothing when there is nothing)."""
    out: dict[str, Any] = {}
    if gen.column_orders_:
        out["column_orders"] = orders_state(gen.column_orders_, gen.order_ties_)
    if gen.relations_:
        out["relations"] = [[*r.columns, r.scale] for r in gen.relations_]
    if gen.missing_together_:
        out["missing_together"] = [list(g) for g in gen.missing_together_]
    if gen.missing_when_:
        out["missing_when"] = [m.state() for m in gen.missing_when_]
    return out


def read(gen: Any, meta: dict[str, Any], folder: Path) -> None:
    """Read them back from generator.json (older folders have none)."""
    gen.column_orders_, gen.order_ties_ = read_orders(
        meta.get("column_orders") or [], gen.codec_, folder
    )
    gen.relations_ = read_relations(meta.get("relations") or [], gen.codec_, folder)
    names = {c.name for c in gen.codec_.columns}
    groups = meta.get("missing_together") or []
    if not isinstance(groups, list) or any(
        not isinstance(g, list) or not set(map(str, g)) <= names for g in groups
    ):
        raise ModelFolderError(
            f"model folder {folder} is corrupted: generator.json's missing-together groups "
            "are unreadable or name columns the model does not generate; fit the model again"
        )
    gen.missing_together_ = [tuple(map(str, g)) for g in groups]
    gen.missing_when_ = _read_missing_when(meta.get("missing_when") or [], names, folder)


def _read_missing_when(items: Any, names: set[str], folder: Path) -> list[MissingWhen]:
    try:
        out = [MissingWhen(tuple(map(str, i["columns"])), str(i["by"]), i["value"]) for i in items]
    except (TypeError, KeyError):
        out = None
    if out is None or any(not {*m.columns, m.by} <= names for m in out):
        raise ModelFolderError(
            f"model folder {folder} is corrupted: generator.json's 'missing exactly when' "
            "relations are unreadable or name columns the model does not generate; fit the "
            "model again"
        )
    return out


#: Ties (equal values) an order's training rows must hold before their chance is kept.
MIN_TIES = 5


@dataclass(frozen=True)
class TieChance:
    """The chance that an order's two values are equal where their token intervals meet.

    ``q`` holds for every row, unless ``by`` names a categorical column whose value changes it:
    ``chances`` maps that column's values (as text) to their own chance, and ``q`` is then the
    chance of the values not listed (survival/mgus2: the progression time is the follow-up time
    for every patient with ``pstat = 0``, for few of the others).
    """

    q: float
    by: str | None = None
    chances: dict[str, float] = field(default_factory=dict)

    def per_row(self, decoded: dict[str, pd.Series]) -> float | np.ndarray:
        """The chance of each decoded row (one number when it does not depend on a column)."""
        if self.by is None or self.by not in decoded:
            return self.q
        keys = decoded[self.by].map(_key)
        return keys.map(self.chances).fillna(self.q).to_numpy(float)

    def state(self) -> list[Any]:
        """``[q]`` or ``[q, {"by": column, "chances": {value: chance}}]`` for generator.json."""
        return [self.q] if self.by is None else [self.q, {"by": self.by, "chances": self.chances}]


def equal_when(gen: Any) -> list[EqualWhen]:
    """The equalities a model's tie chances make certain ("ptime = futime when pstat is 0")."""
    out = []
    for (lo, hi), t in (getattr(gen, "order_ties_", None) or {}).items():
        if t.by is None:
            continue
        for v in gen.codec_.codecs[t.by].values:
            if t.chances.get(str(v), t.q) >= 1.0:
                out.append(EqualWhen(lo, hi, t.by, plain_value(v)))
    return out


def category_token(codec: Any, column: str, value: Any) -> int | None:
    """The token of ``value`` in a categorical column (``None``: not one of its values)."""
    cc = codec.codecs[column]
    if cc.mode != "cat":
        return None
    for i, v in enumerate(cc.values):
        if v == value or str(v) == str(value):
            return i
    return None


def forced_ties(codec: Any, tie: Any) -> np.ndarray | None:
    """Tokens of a tie's deciding column under which the pair always ties (training rows: all).

    One ``True`` for a plain chance of 1; ``None`` when no value forces a tie.
    """
    by = getattr(tie, "by", None)
    if by is None:
        q = float(getattr(tie, "q", tie))
        return np.ones(1, bool) if q >= 1.0 else None
    cc = codec.codecs[by]
    chances = [tie.chances.get(str(v), tie.q) for v in cc.values]
    forced = np.asarray([c >= 1.0 for c in chances] + [False] * cc.has_na, bool)
    return forced if forced.any() else None


def _key(v: Any) -> str | None:
    return None if pd.isna(v) else str(v)


def tie_chances(
    data: pd.DataFrame, codec: Any, orders: list[ColumnOrder]
) -> dict[tuple[str, str], TieChance]:
    """Per order whose training rows hold ties, the chance of a tie.

    The chance that the two values are equal, given that the two columns' token intervals meet
    (a tie always has meeting intervals). A progression time equals the follow-up time for
    everyone who did not progress (survival/mgus2: 92 % of rows); values drawn inside two
    intervals would almost never tie. Where one categorical column's value tells most of
    whether a row ties (:func:`_tie_column`), the chance is kept per value of that column.
    """
    rows = data.reset_index(drop=True)
    local = codec.encode(rows, np.random.default_rng(0))
    names = [c.name for c in codec.columns]
    out: dict[tuple[str, str], TieChance] = {}
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
        meet |= ties
        others = [n for n in names if codec.codecs[n].mode == "cat" and n not in (o.low, o.high)]
        by, chances, q = _tie_column(rows, others, ties, meet)
        out[(o.low, o.high)] = TieChance(round(q, 4), by, chances)
    return out


#: Rows (with meeting intervals) a category needs before it gets its own tie chance.
MIN_BY_ROWS = 20
#: The share of the ties' uncertainty a column must explain before the chance depends on it.
MIN_TIE_GAIN = 0.5


def _tie_column(
    rows: pd.DataFrame, candidates: list[str], ties: np.ndarray, meet: np.ndarray
) -> tuple[str | None, dict[str, float], float]:
    """The categorical column that best tells ties apart, its values' chances, the rest's.

    Among the rows whose intervals meet: each value with at least :data:`MIN_BY_ROWS` such rows
    gets its own chance, the other values (and missing ones) share one. The column that leaves
    the least entropy of "tie or not" is kept if it removes at least :data:`MIN_TIE_GAIN` of it.
    """

    def entropy(p: float) -> float:
        p = min(max(p, 1e-12), 1 - 1e-12)
        return float(-(p * np.log(p) + (1 - p) * np.log(1 - p)))

    t = ties[meet]
    overall = float(t.mean())
    total = entropy(overall)
    if total < 1e-6:
        return None, {}, overall
    best: tuple[float, str | None, dict[str, float], float] = (total, None, {}, overall)
    for name in candidates:
        keys = rows.loc[meet, name].map(_key).to_numpy(object)
        values, counts = np.unique(keys[keys != None], return_counts=True)  # noqa: E711
        own = [str(v) for v, n in zip(values, counts, strict=True) if n >= MIN_BY_ROWS]
        if not own:
            continue
        chances = {k: round(float(t[keys == k].mean()), 4) for k in own}
        rest = ~np.isin(keys, own)
        q = round(float(t[rest].mean()), 4) if rest.any() else overall
        left = rest.mean() * entropy(q)
        left += sum(float((keys == k).mean()) * entropy(c) for k, c in chances.items())
        if left < best[0]:
            best = (left, name, chances, q)
    left, name, chances, q = best
    if name is None or total - left < MIN_TIE_GAIN * total:
        return None, {}, overall
    return name, chances, q


def orders_state(orders: list[ColumnOrder], ties: dict[tuple[str, str], TieChance]) -> list[Any]:
    """The orders as generator.json keeps them.

    ``[low, high]``, ``[low, high, tie chance]`` or ``[low, high, chance otherwise, {"by":
    column, "chances": {value: chance}}]``.
    """
    return [
        [o.low, o.high, *ties[(o.low, o.high)].state()]
        if (o.low, o.high) in ties
        else [o.low, o.high]
        for o in orders
    ]


def read_orders(
    items: Any, codec: Any, folder: Path
) -> tuple[list[ColumnOrder], dict[tuple[str, str], TieChance]]:
    """The column orders (and tie chances) a model folder saved (older folders have none)."""
    names = {c.name for c in codec.columns}
    try:
        orders = [ColumnOrder(str(item[0]), str(item[1])) for item in items]
        ties = {(str(i[0]), str(i[1])): _read_tie(i[2:], names) for i in items if len(i) > 2}
        if any(len(i) not in (2, 3, 4) for i in items):
            raise ValueError
    except (TypeError, ValueError, IndexError, KeyError, AttributeError):
        orders = None
    if orders is None or any(o.low not in names or o.high not in names for o in orders):
        raise ModelFolderError(
            f"model folder {folder} is corrupted: generator.json's column orders are "
            "unreadable or name columns the model does not generate; fit the model again"
        )
    return orders, ties


def _read_tie(item: list[Any], names: set[str]) -> TieChance:
    q = float(item[0])
    by, chances = None, {}
    if len(item) == 2:
        by, chances = str(item[1]["by"]), {str(k): float(v) for k, v in item[1]["chances"].items()}
        if by not in names:
            raise ValueError
    if not all(0 <= x <= 1 for x in (q, *chances.values())):
        raise ValueError
    return TieChance(q, by, chances)


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
