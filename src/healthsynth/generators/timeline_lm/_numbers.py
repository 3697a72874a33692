"""A number in a timeline (a start day, a gap, a lab value): one or two tokens of a codec."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from healthsynth.generators.tabular_lm._codec import _ColumnCodec

__all__ = ["_Num"]


class _Num:
    """A numeric field (start day, gap, one item's values) with one or two token slots."""

    def __init__(self, codec: _ColumnCodec) -> None:
        self.codec = codec
        self.sizes = codec.slot_sizes
        self.two = codec.mode == "continuous"
        if codec.mode == "cat":
            vals = pd.to_numeric(pd.Series(codec.values, dtype=object), errors="coerce")
            self.lb0 = vals.to_numpy(float)
            self.ub0 = self.lb0.copy()
        elif codec.mode == "discrete":
            self.lb0 = np.asarray(codec.values, float)
            self.ub0 = self.lb0.copy()
        else:
            self.lb0 = np.asarray(codec.edges[:-1], float)
            self.ub0 = np.asarray(codec.edges[1:], float)
            self.lb1 = codec.sub_edges[:, :-1]
            self.ub1 = codec.sub_edges[:, 1:]
        if codec.has_na:  # the NA token carries no number: never below or above a bound
            self.lb0 = np.append(self.lb0, np.nan)
            self.ub0 = np.append(self.ub0, np.nan)
            if self.two:
                self.lb1 = np.vstack([self.lb1, np.full(self.lb1.shape[1], np.nan)])
                self.ub1 = np.vstack([self.ub1, np.full(self.ub1.shape[1], np.nan)])

    def fine_table(self) -> np.ndarray:
        return self.codec.fine_table()

    def within(self, low: float | None, high: float | None) -> tuple[np.ndarray, np.ndarray | None]:
        """Tokens whose interval meets [low, high] (NA tokens stay allowed)."""
        lo = -np.inf if low is None else low
        hi = np.inf if high is None else high
        ok0 = ~((self.ub0 < lo) | (self.lb0 > hi))
        ok1 = None
        if self.two:
            ok1 = ~((self.ub1 < lo) | (self.lb1 > hi)) & self.fine_table()
            ok0 = ok0 & ok1.any(axis=1)
        return ok0, ok1

    def decode(
        self, t0: np.ndarray, t1: np.ndarray | None, rng: np.random.Generator, low: Any, high: Any
    ) -> np.ndarray:
        codes = [t0] if t1 is None or not self.two else [t0, t1]
        n = len(t0)
        bounds = (
            np.full(n, -np.inf if low is None else low),
            np.full(n, np.inf if high is None else high),
        )
        s = self.codec.decode(codes, rng, None, bounds if self.two else None)
        x = pd.to_numeric(s, errors="coerce").to_numpy(float)
        if low is not None or high is not None:
            x = np.clip(x, bounds[0], bounds[1])
        return x
