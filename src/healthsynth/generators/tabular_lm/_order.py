"""Slot orders of tabular-lm that put the target last (numpy only: sampling imports it)."""

from __future__ import annotations

import numpy as np

from healthsynth.generators.tabular_lm._codec import TableCodec

__all__ = ["deciders_first", "slots_last", "target_slots"]


def target_slots(codec: TableCodec) -> np.ndarray:
    """The slots of the schema's target column (empty without a target)."""
    target = codec.schema.target
    names = [c.name for c in codec.columns]
    if target is None or target not in names:
        return np.zeros(0, np.int64)
    return np.asarray(codec.column_slots[names.index(target)], np.int64)


def slots_last(order: np.ndarray, slots: np.ndarray) -> np.ndarray:
    """Slot orders (one per row, or one 1-D order) with ``slots`` moved to the end, in order."""
    key = np.arange(order.shape[-1]) + np.isin(order, slots) * order.shape[-1]
    return np.take_along_axis(order, np.argsort(key, axis=-1, kind="stable"), axis=-1)


def deciders_first(
    order: np.ndarray, codec: TableCodec, pairs: list[tuple[int, int, int]], front: int
) -> np.ndarray:
    """A 1-D slot ``order`` with each deciding column moved up behind the first ``front`` slots.

    ``pairs`` holds (low, high, deciding column) indices of orders whose values are equal
    whenever the deciding column has some value. Decided after both, it could only be kept
    from that value where the two came out unequal, and would follow their draws instead of
    its own; moved to the front (as a condition is, the order shape the model trains on), it
    is drawn first and the pair kept equal where it asks for it.
    """
    pos = {int(s): i for i, s in enumerate(order)}
    move: list[int] = []
    for lo, hi, by in pairs:
        first_of = min(pos[s] for s in codec.column_slots[by])
        if first_of >= front and all(
            first_of > max(pos[s] for s in codec.column_slots[c]) for c in (lo, hi)
        ):
            move.extend(s for s in codec.column_slots[by] if s not in move)
    if not move:
        return order
    rest = [int(s) for s in order[front:] if int(s) not in move]
    return np.asarray([*order[:front].tolist(), *move, *rest], np.int64)
