"""Row-to-row distances between tables of one schema (a Gower-style distance).

Numeric columns contribute ``|x - y| / spread`` (spread: the reference's 1st–99th percentile
range), categorical columns 0 when equal and 1 when not, and a missing value differs from a present
one by 1. The distance is the mean over columns, so it lies in [0, ~1] whatever the table's width.
Both the privacy-aware stop of the generators and the privacy metrics use it.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
from sklearn.neighbors import NearestNeighbors

from healthsynth.data._schema import Schema

__all__ = ["RowEncoder", "nearest_distances"]


class RowEncoder:
    """Turn rows into vectors whose L1 distance divided by the column count is Gower-like."""

    def __init__(self, schema: Schema) -> None:
        self.schema = schema

    def fit(self, reference: pd.DataFrame) -> RowEncoder:
        """Learn spreads and category lists from ``reference``."""
        self.columns_ = [c for c in self.schema.modelled if c.name in reference.columns]
        self.params_: dict[str, Any] = {}
        for c in self.columns_:
            s = reference[c.name]
            if c.kind in ("numeric", "integer", "datetime"):
                v = _as_float(s, c.kind)
                v = v[np.isfinite(v)]
                if len(v) == 0:
                    self.params_[c.name] = (0.0, 1.0)
                    continue
                lo, hi = np.percentile(v, [1, 99])
                spread = float(hi - lo) or float(v.max() - v.min()) or 1.0
                self.params_[c.name] = (float(np.median(v)), spread)
            else:
                self.params_[c.name] = list(c.categories or s.dropna().unique())
        return self

    def transform(self, df: pd.DataFrame) -> np.ndarray:
        """Return a float matrix (rows × features)."""
        blocks = []
        for c in self.columns_:
            s = df[c.name]
            if c.kind in ("numeric", "integer", "datetime"):
                med, spread = self.params_[c.name]  # type: ignore[misc]
                v = _as_float(s, c.kind)
                miss = ~np.isfinite(v)
                x = np.where(miss, med, v) / spread
                blocks.append(x[:, None])
                if c.missing_rate > 0 or miss.any():
                    blocks.append(miss.astype(float)[:, None])
            else:
                cats = self.params_[c.name]
                codes = pd.Categorical(s, categories=cats).codes  # type: ignore[arg-type]
                onehot = np.zeros((len(s), len(cats) + 1))  # type: ignore[arg-type]
                onehot[np.arange(len(s)), np.where(codes < 0, len(cats), codes)] = 0.5  # type: ignore[arg-type]
                blocks.append(onehot)
        if not blocks:
            return np.zeros((len(df), 1))
        return np.hstack(blocks) / max(len(self.columns_), 1)


def _as_float(s: pd.Series, kind: str) -> np.ndarray:
    if kind == "datetime":
        t = pd.to_datetime(s, errors="coerce")
        out = (t - pd.Timestamp("1970-01-01")).dt.total_seconds().to_numpy(float) / 86400.0
        return np.where(t.isna().to_numpy(), np.nan, out)
    return pd.to_numeric(s, errors="coerce").to_numpy(float)


def nearest_distances(query: np.ndarray, reference: np.ndarray, *, k: int = 1) -> np.ndarray:
    """Distances (L1 on encoded rows) from each query row to its ``k`` nearest reference rows."""
    nn = NearestNeighbors(n_neighbors=min(k, len(reference)), metric="manhattan")
    nn.fit(reference)
    dist, _ = nn.kneighbors(query)
    return dist
