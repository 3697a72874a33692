"""Lab trajectories over time.

Card
----
What: for every item that carries numbers (a lab test, a measured column), its values are put
into yearly bins of time from the index date (bin ``k`` holds days ``[k, k + 1) × 365.25``),
and the mean value per bin is computed in the real training patients and in the synthetic
patients. Before averaging, values on both sides are clipped to the real item's 1st–99th
percentile range, so a few gross outliers (data-entry errors) do not decide the curve. For
each bin with at least ``min_count`` (20) real and 5 synthetic values, the absolute difference
of the means is divided by the standard deviation of the item's clipped real values; an item's
score is the mean over its bins weighted by the number of real values in each (so sparse bins
at the ends of follow-up weigh little), and the value is the mean over items.
Range: 0 (same curves) upwards, in real standard deviations.
Direction: lower is better.
Reference: the same score for the real holdout patients against the training patients.
Details: per item its score, the real and synthetic curves (bins, means, counts) for the report,
and the items or bins the synthetic data lacks.
Not applicable when times are calendar dates (there is no index date to bin from), when no item
carries numbers, or when no bin has enough values on both sides.
Limitations: means only (a spread that is too narrow goes unseen); patients measured often weigh
more; bins the synthetic data leaves empty are listed, not scored (``event_prevalence_r2`` and
``events_per_patient`` see missing measurements).
Citation: each bin's gap is an absolute standardized mean difference, as in Austin 2009,
"Balance diagnostics for comparing the distribution of baseline covariates between treatment
groups in propensity-score matched samples" (Statistics in Medicine).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from healthsynth.data import Dataset
from healthsynth.evaluate._base import Measure, MetricInfo, MetricRecord, not_applicable
from healthsynth.evaluate.timeline._prepare import Timelines
from healthsynth.evaluate.timeline._records import headline, reference, sides

__all__ = ["INFO", "compute", "curves"]

NAME = "lab_trajectories"
DIMENSION = "fidelity"
BIN_DAYS = 365.25
_MIN_SYNTHETIC = 5


INFO = MetricInfo(
    name=NAME,
    dimension=DIMENSION,
    kind="timelines",
    summary="Whether lab values follow the real curves over the years of follow-up.",
    measures=(
        Measure(
            NAME,
            "lower",
            "Mean gap between real and synthetic yearly mean lab values, in real standard "
            "deviations; 0 = same curves.",
            low=0,
        ),
    ),
)


def _values(tl: Timelines, label: str) -> tuple[np.ndarray, np.ndarray]:
    ev = tl.events
    rows = (ev["label"].to_numpy() == label) & np.isfinite(ev["value"].to_numpy())
    return ev["t"].to_numpy()[rows], ev["value"].to_numpy()[rows]


def _binned(t: np.ndarray, v: np.ndarray) -> pd.DataFrame:
    bins = np.floor(t / BIN_DAYS).astype(np.int64)
    return pd.DataFrame({"bin": bins, "v": v}).groupby("bin")["v"].agg(["mean", "size"])


def curves(
    real: Timelines, other: Timelines, label: str, *, min_count: int
) -> dict[str, Any] | None:
    """Both mean curves of one item over yearly bins, and the item's score (None if unusable)."""
    tr, vr = _values(real, label)
    if len(vr) < min_count:
        return None
    lo, hi = np.percentile(vr, [1, 99])
    vr = np.clip(vr, lo, hi)
    scale = float(vr.std()) or 1.0
    to, vo = _values(other, label)
    a = _binned(tr, vr)
    a = a[a["size"] >= min_count]
    if a.empty:
        return None
    b = _binned(to, np.clip(vo, lo, hi)).reindex(a.index)
    b["size"] = b["size"].fillna(0).astype(int)
    used = (b["size"] >= _MIN_SYNTHETIC).to_numpy()
    diff = np.abs(b["mean"].to_numpy() - a["mean"].to_numpy()) / scale
    return {
        "score": float(np.average(diff[used], weights=a["size"].to_numpy()[used]))
        if used.any()
        else None,
        "scale": scale,
        "clip": [float(lo), float(hi)],
        "bins": a.index.tolist(),
        "real": a["mean"].tolist(),
        "synthetic": [float(x) if u else None for x, u in zip(b["mean"], used, strict=True)],
        "n_real": a["size"].astype(int).tolist(),
        "n_synthetic": b["size"].tolist(),
        "bins_missing_in_synthetic": int((~used).sum()),
    }


def _score(
    real: Timelines, other: Timelines, labels: list[str], min_count: int
) -> tuple[float, dict[str, Any]]:
    per_item: dict[str, Any] = {}
    missing = []
    for label in labels:
        c = curves(real, other, label, min_count=min_count)
        if c is None:
            continue
        if c["score"] is None:
            missing.append(label)
        per_item[label] = c
    scores = [c["score"] for c in per_item.values() if c["score"] is not None]
    value = float(np.mean(scores)) if scores else float("nan")
    return value, {
        "bin_days": BIN_DAYS,
        "min_count": min_count,
        "scores": {k: c["score"] for k, c in per_item.items()},
        "items_missing_in_synthetic": missing,
        "curves": per_item,
    }


def compute(
    *,
    real: Dataset | Timelines,
    synthetic: Dataset | Timelines,
    holdout: Dataset | Timelines | None = None,
    seed: int = 0,
    min_count: int = 20,
) -> list[MetricRecord]:
    """Mean standardized gap between real and synthetic yearly mean curves (lower is better).

    Parameters
    ----------
    real
        The training patients.
    synthetic
        The generated patients.
    holdout
        Real patients the generator never saw; scored the same way as the reference.
    seed
        Unused (the metric is exact); kept for the common signature.
    min_count
        A bin is compared when it holds at least this many real values (and 5 synthetic ones).

    Returns
    -------
    list of MetricRecord
        One ``lab_trajectories`` record.
    """
    r, s, h = sides(real, synthetic, holdout)
    if r.dates:
        return [
            not_applicable(
                NAME,
                DIMENSION,
                "event times are calendar dates: give days from an index date to bin by year",
                direction="lower",
            )
        ]
    labels = list(r.value_labels)
    if not labels:
        return [
            not_applicable(
                NAME, DIMENSION, "no event item carries numbers (lab values)", direction="lower"
            )
        ]
    value, details = _score(r, s, labels, min_count)
    if not np.isfinite(value):
        return [
            not_applicable(
                NAME,
                DIMENSION,
                f"no yearly bin holds {min_count} real and {_MIN_SYNTHETIC} synthetic values of "
                "any lab item",
                direction="lower",
                details={k: v for k, v in details.items() if k != "curves"},
            )
        ]
    ref = reference(lambda tl: _score(r, tl, labels, min_count)[0], h)
    return headline(NAME, DIMENSION, value, direction="lower", reference=ref, details=details)
