"""Slot orders of tabular-lm that put the target last (numpy only: sampling imports it)."""

from __future__ import annotations

import numpy as np

from healthsynth.generators.tabular_lm._codec import TableCodec

__all__ = ["slots_last", "target_slots"]


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
