"""What scoring a block of synthetic rows needs, prepared once on the driver.

:func:`build_state` builds the :class:`State` that :mod:`healthsynth.scale._partials` sends to
every worker once: the real values' grid per column, the fitted row encoder and
nearest-neighbour indexes of the training rows, the holdout, the rules.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from healthsynth.data import Schema

__all__ = ["DISTRIBUTED", "State", "build_state", "copy_lookup", "row_keys"]

#: the metrics computed over every synthetic row (the others run on a subsample)
DISTRIBUTED = ("column_distance", "dcr", "tstr", "rule_violations")
_NUMERIC = ("numeric", "integer", "datetime")
_PLOT_BINS = 20
_PLOT_CATEGORIES = 15


@dataclass
class State:
    """What every block's scoring shares (built once, sent to the workers once)."""

    schema: Schema
    names: list[str]
    metrics: tuple[str, ...]
    seed: int
    grids: dict[str, np.ndarray] = field(default_factory=dict)
    edges: dict[str, np.ndarray] = field(default_factory=dict)
    top: dict[str, list[str]] = field(default_factory=dict)
    encoder: Any = None
    index: Any = None
    train_sub_index: Any = None
    holdout_index: Any = None
    copy_keys: np.ndarray | None = None
    copy_rows: np.ndarray | None = None
    closer_fraction: float = 1.0
    dcr_fraction: float = 1.0
    holdout: pd.DataFrame | None = None
    max_train_rows: int = 20_000
    rules: Any = None
    tstr_why_not: str | None = None


def _num(s: pd.Series, kind: str) -> np.ndarray:
    if kind == "datetime":
        t = pd.to_datetime(s, errors="coerce")
        x = t.astype("int64").to_numpy(float)
        return np.where(t.isna().to_numpy(), np.nan, x)
    return pd.to_numeric(s, errors="coerce").to_numpy(float)


def build_state(
    *,
    real: pd.DataFrame,
    holdout: pd.DataFrame | None,
    schema: Schema,
    metrics: tuple[str, ...],
    seed: int,
    rules: Any,
    total_rows: int,
    closer_rows: int,
    dcr_rows: int | None = None,
) -> State:
    """Everything :func:`score_block` needs, from the prepared real and holdout tables."""
    state = State(schema=schema, names=list(real.columns), metrics=metrics, seed=seed)
    if "column_distance" in metrics:
        for c in schema.modelled:
            if c.name not in real.columns:
                continue
            present = real[c.name].dropna()
            if c.kind in _NUMERIC:
                x = _num(present, c.kind)
                x = x[np.isfinite(x)]
                state.grids[c.name] = np.unique(x)
                if len(x):
                    lo, hi = float(x.min()), float(x.max())
                    state.edges[c.name] = np.linspace(lo, hi if hi > lo else lo + 1, _PLOT_BINS + 1)
            else:
                shares = present.astype(str).value_counts()
                state.top[c.name] = shares.index[:_PLOT_CATEGORIES].tolist()
    if "dcr" in metrics:
        from healthsynth.data._distance import RowEncoder, neighbour_index

        state.encoder = RowEncoder(schema).fit(real)
        rx = state.encoder.transform(real)
        state.index = neighbour_index(rx)
        state.copy_keys, state.copy_rows = copy_lookup(rx)
        if dcr_rows is not None:
            state.dcr_fraction = min(1.0, dcr_rows / max(total_rows, 1))
        if holdout is not None and len(holdout):
            rng = np.random.default_rng(seed)
            sub = rng.choice(len(real), size=min(len(holdout), len(real)), replace=False)
            state.train_sub_index = neighbour_index(rx[np.sort(sub)])
            state.holdout_index = neighbour_index(state.encoder.transform(holdout))
            state.closer_fraction = min(1.0, closer_rows / max(total_rows, 1))
    if "tstr" in metrics:
        from healthsynth.evaluate.utility.tstr import why_not

        state.tstr_why_not = why_not(schema, real, holdout)
        state.holdout = holdout
    if "rule_violations" in metrics:
        state.rules = rules
    return state


def row_keys(x: np.ndarray) -> np.ndarray:
    """One 64-bit hash per row of an encoded matrix (equal rows, equal keys)."""
    keys = np.zeros(len(x), dtype=np.uint64)
    for j in range(x.shape[1]):
        # + 0.0 turns -0.0 into 0.0, which compare equal but hash apart
        col = pd.util.hash_array(np.ascontiguousarray(x[:, j]) + 0.0)
        keys = (keys * np.uint64(1099511628211)) ^ col
    return keys


def copy_lookup(rx: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The training rows' keys, sorted, and the rows in that order (to confirm a key match)."""
    keys = row_keys(rx)
    order = np.argsort(keys, kind="stable")
    return keys[order], rx[order]
