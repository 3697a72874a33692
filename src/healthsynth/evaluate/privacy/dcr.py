"""Distance to closest record (DCR), against a real holdout.

Card
----
What: rows are compared with a Gower-style distance (:mod:`healthsynth.data._distance`). For
each synthetic row, the distance to its nearest training row; the same for each real holdout row.
Records: ``dcr_median_ratio`` = median synthetic DCR / median holdout DCR (≥ 1 means the
synthetic rows sit no closer to the training rows than fresh real rows do; higher is safer);
``exact_copy_rate`` = share of synthetic rows identical to a training row (reference: the same
share among holdout rows); ``closer_to_train_share`` = share of synthetic rows whose nearest
training row is closer than their nearest holdout row, with the training rows subsampled to the
holdout's size (0.5 is ideal; above it, the generator copies).
Limitations: a distance summary, not an attack; it cannot prove privacy, only flag copying.
Citation: Park et al. 2018 (DCR); Platzer & Reutterer 2021 (holdout-based closeness);
REaLTabFormer (Solatorio & Dupriez 2023) uses the same comparison as a stopping rule.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from healthsynth.data import Schema
from healthsynth.data._distance import RowEncoder, nearest_distances
from healthsynth.evaluate._base import MetricRecord

__all__ = ["compute"]


def compute(
    *,
    real: pd.DataFrame,
    synthetic: pd.DataFrame,
    holdout: pd.DataFrame | None = None,
    schema: Schema,
    seed: int = 0,
    max_rows: int = 10_000,
) -> list[MetricRecord]:
    """DCR ratio, exact-copy rate and closer-to-train share."""
    rng = np.random.default_rng(seed)
    if len(synthetic) > max_rows:
        synthetic = synthetic.iloc[rng.choice(len(synthetic), max_rows, replace=False)]
    enc = RowEncoder(schema).fit(real)
    rx, sx = enc.transform(real), enc.transform(synthetic)
    d_syn = nearest_distances(sx, rx)[:, 0]
    if holdout is None:
        return [
            MetricRecord(
                name="dcr_median",
                dimension="privacy",
                value=float(np.median(d_syn)),
                direction="higher",
                message="no holdout: the ratio to fresh real data is unavailable",
            )
        ]
    hx = enc.transform(holdout)
    d_hold = nearest_distances(hx, rx)[:, 0]
    med_h = float(np.median(d_hold))
    ratio = float(np.median(d_syn) / med_h) if med_h > 0 else float("nan")
    boots = []
    for _ in range(200):
        a = rng.choice(d_syn, len(d_syn))
        b = rng.choice(d_hold, len(d_hold))
        if np.median(b) > 0:
            boots.append(np.median(a) / np.median(b))
    interval = None
    if boots:
        lo, hi = np.percentile(boots, [2.5, 97.5])
        interval = (float(lo), float(hi))
    sub = rng.choice(len(real), size=min(len(holdout), len(real)), replace=False)
    d_tr = nearest_distances(sx, rx[sub])[:, 0]
    d_ho = nearest_distances(sx, hx)[:, 0]
    closer = float(np.mean(d_tr < d_ho) + 0.5 * np.mean(d_tr == d_ho))
    return [
        MetricRecord(
            name="dcr_median_ratio",
            dimension="privacy",
            value=ratio,
            direction="higher",
            interval=interval,
            reference=1.0,
            details={"median_dcr_synthetic": float(np.median(d_syn)), "median_dcr_holdout": med_h},
        ),
        MetricRecord(
            name="exact_copy_rate",
            dimension="privacy",
            value=float(np.mean(d_syn == 0)),
            direction="lower",
            reference=float(np.mean(d_hold == 0)),
        ),
        MetricRecord(
            name="closer_to_train_share",
            dimension="privacy",
            value=closer,
            direction="target",
            reference=0.5,
        ),
    ]
