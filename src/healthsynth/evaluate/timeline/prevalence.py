"""Event prevalence R².

Card
----
What: for every item (``table/item``: a diagnosis, a lab test, a measured column) the share of
patients with at least one such event, in the real training patients and in the synthetic
patients. The value is the coefficient of determination of the synthetic shares as predictions
of the real ones, ``1 - SS_res / SS_tot`` over items; the squared Pearson correlation is in
``details`` (it forgives a constant offset or scale that R² punishes). Items found on only one
side count with a share of 0 on the other.
Range: at most 1 (identical shares); 0 = no better than giving every item the mean real share;
negative = worse than that.
Direction: higher is better.
Reference: the same R² for the real holdout patients against the training patients.
Details: per-item shares (``items``), the Pearson r², items missing from the synthetic data and
items it invents.
Not applicable with fewer than two items, or when every item has the same real share.
Limitations: marginal per item only (pairs: ``cooccurrence_r2``; timing: ``event_order``); with
a handful of items R² rests on few points; a share says nothing about how many times an event
recurs (``events_per_patient``).
Citation: Theodorou et al. 2023, "Synthesize high-dimensional longitudinal electronic health
records via hierarchical autoregressive language model" (HALO), which reports this R².
"""

from __future__ import annotations

from typing import Any

import numpy as np

from healthsynth.data import Dataset
from healthsynth.evaluate._base import Measure, MetricInfo, MetricRecord, not_applicable
from healthsynth.evaluate.timeline._prepare import Timelines, pearson_r2, r2_score
from healthsynth.evaluate.timeline._records import headline, sides

__all__ = ["INFO", "compute", "prevalence"]

NAME = "event_prevalence_r2"
DIMENSION = "fidelity"


INFO = MetricInfo(
    name=NAME,
    dimension=DIMENSION,
    kind="timelines",
    summary="Whether each item is as common among synthetic patients as among real ones.",
    measures=(
        Measure(
            NAME,
            "higher",
            "R² of the share of patients with each item, synthetic against real (HALO); "
            "1 = identical shares.",
            high=1,
        ),
    ),
)


def prevalence(tl: Timelines, labels: list[str]) -> np.ndarray:
    """Share of patients with at least one event of each label."""
    if tl.n == 0:
        return np.zeros(len(labels))
    return tl.presence(labels).mean(axis=0)  # type: ignore[no-any-return]


def _score(real: Timelines, other: Timelines) -> tuple[float, dict[str, Any]]:
    labels = sorted(set(real.labels) | set(other.labels))
    pr, po = prevalence(real, labels), prevalence(other, labels)
    return r2_score(pr, po), {
        "pearson_r2": pearson_r2(pr, po),
        "n_items": len(labels),
        "items": {
            lab: {"real": a, "synthetic": b} for lab, a, b in zip(labels, pr, po, strict=True)
        },
        "missing_items": sorted(set(real.labels) - set(other.labels)),
        "invented_items": sorted(set(other.labels) - set(real.labels)),
    }


def compute(
    *,
    real: Dataset | Timelines,
    synthetic: Dataset | Timelines,
    holdout: Dataset | Timelines | None = None,
    seed: int = 0,
) -> list[MetricRecord]:
    """R² of per-item patient shares, synthetic against real (higher is better).

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

    Returns
    -------
    list of MetricRecord
        One ``event_prevalence_r2`` record.
    """
    r, s, h = sides(real, synthetic, holdout)
    labels = sorted(set(r.labels) | set(s.labels))
    if len(labels) < 2:
        return [not_applicable(NAME, DIMENSION, "fewer than two items to compare")]
    value, details = _score(r, s)
    if not np.isfinite(value):
        return [
            not_applicable(
                NAME, DIMENSION, "every item has the same real share, so R² is undefined"
            )
        ]
    ref = _score(r, h)[0] if h is not None else None
    details["n_patients_real"], details["n_patients_synthetic"] = r.n, s.n
    return headline(NAME, DIMENSION, value, direction="higher", reference=ref, details=details)
