"""Placing the values of ordered columns inside their token intervals, lowest first.

``codec`` is a ``TableCodec`` (not imported: the codec imports this module when it decodes).
"""

from __future__ import annotations

import graphlib
from typing import Any

import numpy as np
import pandas as pd

from healthsynth.knowledge._orders import as_numbers

__all__ = ["place_ordered"]

Parts = dict[int, tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray | None]]


def place_ordered(
    codec: Any,
    parts: Parts,
    orders: list[tuple[int, int]],
    ties: dict[tuple[int, int], float | np.ndarray],
    rng: np.random.Generator,
) -> dict[str, pd.Series]:
    """Values of the ordered columns, placed lowest first.

    Each is at least its predecessors' values and at most what its successors' intervals
    allow. With a pair's tie chance (one number, or one per row), where the two intervals
    meet, the lower value is placed where they meet and the higher one takes it. A row whose
    intervals leave no room keeps its independent draws (its order breaks, and the sampler
    draws it again).
    """
    preds: dict[int, list[int]] = {c: [] for c in parts}
    succs: dict[int, list[int]] = {c: [] for c in parts}
    for lo, hi in orders:
        preds[hi].append(lo)
        succs[lo].append(hi)
    topo = list(graphlib.TopologicalSorter({c: set(preds[c]) for c in parts}).static_order())
    # the highest value each column may take: its own, and its successors' (present ones)
    top = {c: np.where(parts[c][2], np.nan, parts[c][1]) for c in parts}
    for c in reversed(topo):
        for s in succs[c]:
            top[c] = np.fmin(top[c], top[s])
    parts, tied = _tie_rows(parts, ties, rng)
    values: dict[int, np.ndarray] = {}
    out: dict[str, pd.Series] = {}
    for c in topo:
        a, b, miss, u = parts[c]
        low = a.copy()
        for p in preds[c]:
            low = np.fmax(low, values[p])
        high = np.where(np.isnan(top[c]), b, top[c])
        room = ~miss & (low <= high)
        lo_c, hi_c = np.where(room, low, a), np.where(room, high, b)
        for p in preds[c]:
            if (p, c) in tied and u is not None:
                v = values[p]
                tie = tied[(p, c)] & room & (v >= low) & (v <= high)
                lo_c, hi_c = np.where(tie, v, lo_c), np.where(tie, v, hi_c)
        if u is None:  # a discrete value cannot move: only where it already keeps the order
            lo_c = hi_c = a
        name = codec.columns[c].name
        out[name] = codec.codecs[name].values_in(lo_c, hi_c, miss, u)
        values[c] = as_numbers(out[name], codec.columns[c].kind)
    return out


def _tie_rows(
    parts: Parts,
    ties: dict[tuple[int, int], float | np.ndarray],
    rng: np.random.Generator,
) -> tuple[dict[int, Any], dict[tuple[int, int], np.ndarray]]:
    """Rows drawn to tie for each pair with a tie chance.

    The lower column's interval is narrowed there to where the two intervals meet, so that the
    higher value can equal it.
    """
    parts = dict(parts)
    tied: dict[tuple[int, int], np.ndarray] = {}
    for (p, c), q in ties.items():
        if p not in parts or c not in parts or np.all(np.asarray(q) <= 0):
            continue
        a1, b1, miss1, u1 = parts[p]
        a2, b2, miss2, _ = parts[c]
        lo, hi = np.maximum(a1, a2), np.minimum(b1, b2)
        rows = ~miss1 & ~miss2 & (lo <= hi) & (rng.random(len(a1)) < q)
        parts[p] = (np.where(rows, lo, a1), np.where(rows, hi, b1), miss1, u1)
        tied[(p, c)] = rows
    return parts, tied
