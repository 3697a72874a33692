"""Distance to closest record (DCR) and nearest-neighbour distance ratio, against a real holdout.

Card
----
What: rows are compared with a Gower-style distance (:mod:`healthsynth.data._distance`; datetimes
as numbers, a missing value differs from a present one). For each synthetic row, the distance to
its nearest training row; the same for each real holdout row. Records:

- ``dcr_median_ratio`` = median synthetic DCR / median holdout DCR. ``details["histogram"]`` holds
  both DCR distributions as shares over 30 common bins (for the report's plot).
- ``exact_copy_rate`` = share of synthetic rows identical to a training row (reference: the same
  share among holdout rows).
- ``closer_to_train_share`` = share of synthetic rows whose nearest training row is closer than
  their nearest holdout row (ties count one half), with the training rows subsampled to the
  holdout's size.
- ``nndr`` = median nearest-neighbour distance ratio: distance to the 1st / 2nd nearest training
  row (0/0 counts as 1: a row that sits on two identical training rows singles out neither).
  Reference: the same median for holdout rows.

Range: ratio ≥ 0; shares and NNDR in [0, 1].
Direction: ``dcr_median_ratio`` and ``nndr`` higher is safer (≥ the holdout's value means the
synthetic rows sit no closer to training rows than fresh real rows do); ``exact_copy_rate``
lower; ``closer_to_train_share`` 0.5 is ideal, above it the generator copies.
Reference: the holdout, scored as if it were synthetic (ratio 1, share 0.5).
Sample sizes: at most ``max_rows`` (5,000) synthetic and holdout rows are queried (a seeded
subsample; the sizes are in ``details``); all training rows are searched, through an exact k-d
tree, never a full distance matrix. The interval of ``dcr_median_ratio`` is a 95 % bootstrap
interval (200 resamples of both DCR samples).
Limitations: a distance summary, not an attack; it cannot prove privacy, only flag copying and
over-closeness. The distance weighs every column equally, so a copied rare combination of a few
columns can hide behind noise in the others. Without a holdout only the median DCR is reported.
Citation: Park et al. 2018 (DCR); Platzer & Reutterer 2021 (holdout-based closeness);
REaLTabFormer (Solatorio & Dupriez 2023) uses the same comparison as a stopping rule; Zhao et al.
2021, CTAB-GAN (NNDR).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from healthsynth.data import Schema
from healthsynth.data._distance import RowEncoder, nearest_distances, neighbour_index
from healthsynth.evaluate._base import Measure, MetricInfo, MetricRecord
from healthsynth.evaluate.privacy._sample import subsample

__all__ = ["INFO", "compute"]

_BINS = 30
_BOOTSTRAP = 200


INFO = MetricInfo(
    name="dcr",
    dimension="privacy",
    kind="table",
    summary="How close synthetic rows sit to training rows, compared with fresh real rows.",
    measures=(
        Measure(
            "dcr_median_ratio",
            "higher",
            "Median distance to closest training record of synthetic rows divided by the same "
            "for real holdout rows; below 1 means synthetic rows sit closer to the training "
            "rows than fresh real data does.",
            low=0,
        ),
        Measure(
            "dcr_median",
            "higher",
            "Median distance from each synthetic row to its closest real training row.",
            low=0,
        ),
        Measure(
            "exact_copy_rate",
            "lower",
            "Share of synthetic rows identical to a real training row.",
            low=0,
            high=1,
        ),
        Measure(
            "closer_to_train_share",
            "target",
            "Share of synthetic rows closer to a training row than to a holdout row; 0.5 is "
            "what data that never saw the training rows scores.",
            low=0,
            high=1,
        ),
        Measure(
            "nndr",
            "higher",
            "Median ratio of the distances to the first and second nearest training rows; "
            "small values mean synthetic rows single out one training row.",
            low=0,
            high=1,
        ),
    ),
)


def compute(
    *,
    real: pd.DataFrame,
    synthetic: pd.DataFrame,
    holdout: pd.DataFrame | None = None,
    schema: Schema,
    seed: int = 0,
    max_rows: int = 5_000,
) -> list[MetricRecord]:
    """DCR ratio, exact-copy rate, closer-to-train share and NNDR.

    Parameters
    ----------
    real
        The generator's training rows.
    synthetic
        Generated rows.
    holdout
        Real rows the generator never saw; without them only the median DCR is reported.
    schema
        The table's schema (its modelled columns are compared).
    seed
        Seed of the subsampling and the bootstrap.
    max_rows
        At most this many synthetic (and holdout) rows are queried.

    Returns
    -------
    list of MetricRecord
        ``dcr_median_ratio``, ``exact_copy_rate``, ``closer_to_train_share`` and ``nndr``, or one
        ``dcr_median`` record when there is no holdout.
    """
    rng = np.random.default_rng(seed)
    n_syn_total = len(synthetic)
    synthetic = subsample(synthetic, max_rows, rng)
    enc = RowEncoder(schema).fit(real)
    rx, sx = enc.transform(real), enc.transform(synthetic)
    index = neighbour_index(rx)
    k = min(2, len(rx))
    d2_syn = index.kneighbors(sx, n_neighbors=k)[0]
    d_syn = d2_syn[:, 0]
    sizes = {"n_synthetic": len(synthetic), "n_synthetic_total": n_syn_total, "n_train": len(real)}
    if holdout is None or len(holdout) == 0:
        return [
            MetricRecord(
                name="dcr_median",
                dimension="privacy",
                value=float(np.median(d_syn)),
                direction="higher",
                details=sizes,
                message="no holdout: the ratio to fresh real data is unavailable",
            )
        ]
    n_hold_total = len(holdout)
    holdout = subsample(holdout, max_rows, rng)
    hx = enc.transform(holdout)
    d2_hold = index.kneighbors(hx, n_neighbors=k)[0]
    d_hold = d2_hold[:, 0]
    sizes.update(n_holdout=len(holdout), n_holdout_total=n_hold_total)

    interval = _bootstrap_ratio(d_syn, d_hold, rng)

    sub = rng.choice(len(real), size=min(len(holdout), len(real)), replace=False)
    d_tr = nearest_distances(sx, rx[sub])[:, 0]
    d_ho = nearest_distances(sx, hx)[:, 0]
    closer = float(np.mean(d_tr < d_ho) + 0.5 * np.mean(d_tr == d_ho))

    return dcr_records(
        d_syn,
        _nndr(d2_syn),
        d2_hold,
        interval=interval,
        closer=closer,
        sizes=sizes,
        closer_details={**sizes, "n_train_subsample": len(sub)},
    )


def dcr_records(
    d_syn: np.ndarray,
    nndr_syn: np.ndarray,
    d2_hold: np.ndarray,
    *,
    interval: tuple[float, float] | None,
    closer: float | None,
    sizes: dict[str, Any],
    closer_details: dict[str, Any],
    copies: tuple[int, int] | None = None,
) -> list[MetricRecord]:
    """The four records of this metric from its distances, however they were computed.

    ``d_syn`` holds each scored synthetic row's distance to its closest training row and
    ``nndr_syn`` its nearest-neighbour distance ratio; ``d2_hold`` the two closest training
    distances of each holdout row. One process computes them here; the scale-out evaluation
    (:mod:`healthsynth.scale`) block by block. ``copies`` (copies found, rows checked), when
    given, is the exact-copy count of more rows than ``d_syn`` covers (the scale-out evaluation
    checks every row by hashing); otherwise copies are the rows of ``d_syn`` at distance 0.
    """
    d_hold = d2_hold[:, 0]
    if copies is None:
        copy_rate, copy_details = float(np.mean(d_syn == 0)), sizes
    else:
        copy_rate = copies[0] / copies[1] if copies[1] else float("nan")
        copy_details = {**sizes, "n_synthetic": copies[1], "exact_copies": copies[0]}
    med_s, med_h = float(np.median(d_syn)), float(np.median(d_hold))
    return [
        MetricRecord(
            name="dcr_median_ratio",
            dimension="privacy",
            value=med_s / med_h if med_h > 0 else float("nan"),
            direction="higher",
            interval=interval,
            reference=1.0,
            details={
                "median_dcr_synthetic": med_s,
                "median_dcr_holdout": med_h,
                "histogram": _histogram(d_syn, d_hold),
                **sizes,
            },
            message=None if med_h > 0 else "holdout rows all have a copy in the training rows",
        ),
        MetricRecord(
            name="exact_copy_rate",
            dimension="privacy",
            value=copy_rate,
            direction="lower",
            reference=float(np.mean(d_hold == 0)),
            details=copy_details,
        ),
        MetricRecord(
            name="closer_to_train_share",
            dimension="privacy",
            value=closer,
            direction="target",
            reference=0.5,
            details=closer_details,
        ),
        MetricRecord(
            name="nndr",
            dimension="privacy",
            value=float(np.median(nndr_syn)),
            direction="higher",
            reference=float(np.median(_nndr(d2_hold))),
            details={**sizes, "statistic": "median"},
        ),
    ]


def _nndr(d2: np.ndarray) -> np.ndarray:
    """Distance to the 1st over the 2nd nearest row; 1 where both are 0 or there is no 2nd."""
    if d2.shape[1] < 2:
        return np.ones(len(d2))
    first, second = d2[:, 0], d2[:, 1]
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(second > 0, first / np.where(second > 0, second, 1.0), 1.0)


def _bootstrap_ratio(
    d_syn: np.ndarray, d_hold: np.ndarray, rng: np.random.Generator
) -> tuple[float, float] | None:
    boots = []
    for _ in range(_BOOTSTRAP):
        a = np.median(rng.choice(d_syn, len(d_syn)))
        b = np.median(rng.choice(d_hold, len(d_hold)))
        if b > 0:
            boots.append(a / b)
    if not boots:
        return None
    lo, hi = np.percentile(boots, [2.5, 97.5])
    return float(lo), float(hi)


def _histogram(d_syn: np.ndarray, d_hold: np.ndarray) -> dict[str, list[float]]:
    """Shares of both DCR samples over common bins; values above the last edge join the last bin."""
    top = float(np.quantile(np.concatenate([d_syn, d_hold]), 0.99))
    if not top > 0:
        top = float(max(d_syn.max(), d_hold.max())) or 1.0
    edges = np.linspace(0.0, top, _BINS + 1)

    def shares(d: np.ndarray) -> list[float]:
        counts, _ = np.histogram(np.clip(d, 0.0, top), bins=edges)
        return (counts / max(len(d), 1)).tolist()

    return {"edges": edges.tolist(), "synthetic": shares(d_syn), "holdout": shares(d_hold)}
