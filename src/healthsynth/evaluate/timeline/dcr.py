"""Distance to closest record between patients' timeline summaries.

Card
----
What: every patient becomes one summary row: the patients table's columns (except the ID),
``log(1 + n)`` for the number ``n`` of events of each item, and the mean value of each lab
item (missing when never measured). Rows are compared with the Gower-style distance of
:mod:`healthsynth.data._distance` (numbers scaled by the training rows' 1st–99th percentile
range, categories equal or not, a missing value differs from a present one; the mean over
columns, so distances lie in [0, ~1]). For each synthetic patient, the distance to the closest
training patient (DCR); the same for each holdout patient. The value is the median synthetic
DCR divided by the median holdout DCR.
Range: 0 upwards; 1 = synthetic patients sit as close to the training patients as fresh real
patients do; near 0 = copies.
Direction: higher is safer.
Reference: 1 (the holdout scored as if it were synthetic).
Details: both medians, the share of synthetic patients closer to a training patient than the
5th percentile of the holdout distances (reference 0.05), the share at distance 0 (and the
same share among holdout patients), a 95 % bootstrap interval of the ratio, and the sizes.
Sample size: at most ``max_patients`` (5,000) synthetic and holdout patients are queried (a
seeded subsample); all training patients are searched with an exact k-d tree.
Not applicable without a holdout (the median synthetic DCR is then in ``details``).
Limitations: a summary hides the order and timing of events, so two patients with the same
counts and means but different timelines count as identical, and a copied rare timeline can
hide in a common summary; a distance summary flags copying and over-closeness, it does not
prove privacy. A ratio below 1 also comes from collapse onto common, sparse timelines (a
synthetic set without any events scores about 0.5 on NAFLD), so read it next to the fidelity
metrics: copying shows as ``exact_copy_share`` above the holdout's.
Citation: Park et al. 2018 (DCR); Platzer & Reutterer 2021 (holdout-based closeness).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from healthsynth.data import Column, Dataset, Schema, infer_schema
from healthsynth.data._distance import RowEncoder, neighbour_index
from healthsynth.evaluate._base import Measure, MetricInfo, MetricRecord, not_applicable
from healthsynth.evaluate.timeline._prepare import Timelines
from healthsynth.evaluate.timeline._records import sides

__all__ = ["INFO", "compute", "summary_rows"]

NAME = "timeline_dcr"
DIMENSION = "privacy"
_BOOTSTRAP = 200


INFO = MetricInfo(
    name=NAME,
    dimension=DIMENSION,
    kind="timelines",
    summary="How close synthetic patients sit to training patients, compared with fresh real "
    "patients.",
    measures=(
        Measure(
            NAME,
            "higher",
            "Median distance of synthetic patients' timeline summaries to the closest "
            "training patient, over the same for holdout patients; below 1 = closer than "
            "fresh data.",
            low=0,
        ),
    ),
)


def summary_rows(tl: Timelines, labels: list[str], value_labels: list[str]) -> pd.DataFrame:
    """One row per patient: static columns, log counts per item, mean value per lab item."""
    out = tl.patients.drop(columns=[tl.key]).reset_index(drop=True).copy()
    counts = np.log1p(tl.counts(labels))
    for j, lab in enumerate(labels):
        out[f"count:{lab}"] = counts[:, j]
    ev = tl.events[np.isfinite(tl.events["value"].to_numpy())]
    means = ev.groupby(["p", "label"])["value"].mean().unstack("label")
    means = means.reindex(index=range(tl.n), columns=value_labels)
    for lab in value_labels:
        out[f"mean:{lab}"] = means[lab].to_numpy(float)
    return out


def _schema(real: Timelines, rows: pd.DataFrame) -> Schema:
    static = real.dataset.schemas.get(real.dataset.patients)
    if static is None:
        static = infer_schema(real.patients, identifiers=[real.key])
    cols = [c for c in static.modelled if c.name in rows.columns]
    known = {c.name for c in cols}
    cols += [Column(name=c, kind="numeric") for c in rows.columns if c not in known]
    return Schema(columns=tuple(cols))


def _subsample(tl: Timelines, n: int, rng: np.random.Generator) -> np.ndarray:
    return np.arange(tl.n) if tl.n <= n else np.sort(rng.choice(tl.n, n, replace=False))


def compute(
    *,
    real: Dataset | Timelines,
    synthetic: Dataset | Timelines,
    holdout: Dataset | Timelines | None = None,
    seed: int = 0,
    max_patients: int = 5_000,
) -> list[MetricRecord]:
    """Median DCR of synthetic patients over that of holdout patients (higher is safer).

    Parameters
    ----------
    real
        The training patients.
    synthetic
        The generated patients.
    holdout
        Real patients the generator never saw.
    seed
        Seed of the subsamples and the bootstrap.
    max_patients
        Query at most this many synthetic (and holdout) patients.

    Returns
    -------
    list of MetricRecord
        One ``timeline_dcr`` record.
    """
    r, s, h = sides(real, synthetic, holdout)
    rng = np.random.default_rng(seed)
    labels, value_labels = list(r.labels), list(r.value_labels)
    rr = summary_rows(r, labels, value_labels)
    enc = RowEncoder(_schema(r, rr)).fit(rr)
    index = neighbour_index(enc.transform(rr))
    s_rows = summary_rows(s, labels, value_labels).iloc[_subsample(s, max_patients, rng)]
    d_syn = index.kneighbors(enc.transform(s_rows), n_neighbors=1)[0][:, 0]
    sizes: dict[str, Any] = {
        "n_train": r.n,
        "n_synthetic": len(s_rows),
        "n_features": len(rr.columns),
        "median_dcr_synthetic": float(np.median(d_syn)),
        "exact_copy_share": float(np.mean(d_syn == 0)),
    }
    if h is None or h.n == 0:
        return [
            not_applicable(
                NAME,
                DIMENSION,
                "no holdout: the distance of fresh real patients is needed to judge closeness",
                details=sizes,
            )
        ]
    h_rows = summary_rows(h, labels, value_labels).iloc[_subsample(h, max_patients, rng)]
    d_hold = index.kneighbors(enc.transform(h_rows), n_neighbors=1)[0][:, 0]
    med_s, med_h = float(np.median(d_syn)), float(np.median(d_hold))
    p5 = float(np.percentile(d_hold, 5))
    details = {
        **sizes,
        "n_holdout": len(h_rows),
        "median_dcr_holdout": med_h,
        "exact_copy_share_holdout": float(np.mean(d_hold == 0)),
        "holdout_p5": p5,
        "closer_than_holdout_p5": float(np.mean(d_syn < p5)),
        "closer_than_holdout_p5_reference": float(np.mean(d_hold < p5)),
    }
    return [
        MetricRecord(
            name=NAME,
            dimension=DIMENSION,
            value=med_s / med_h if med_h > 0 else None,
            direction="higher",
            reference=1.0,
            interval=_bootstrap(d_syn, d_hold, rng),
            details=details,
            message=None if med_h > 0 else "half the holdout patients have a copy in training",
        )
    ]


def _bootstrap(
    d_syn: np.ndarray, d_hold: np.ndarray, rng: np.random.Generator
) -> tuple[float, float] | None:
    boots = []
    for _ in range(_BOOTSTRAP):
        b = np.median(rng.choice(d_hold, len(d_hold)))
        if b > 0:
            boots.append(np.median(rng.choice(d_syn, len(d_syn))) / b)
    if len(boots) < _BOOTSTRAP // 2:
        return None
    lo, hi = np.percentile(boots, [2.5, 97.5])
    return float(lo), float(hi)
