"""Events per patient.

Card
----
What: for each event table, the number of events each patient has in it (0 for patients
without any), in the real training patients and in the synthetic patients. The two
distributions are compared with the Wasserstein (earth mover's) distance divided by the
standard deviation of the real counts, so it reads in real standard deviations: 0.1 means the
synthetic counts sit, on average, a tenth of a standard deviation away. The value is the mean
over tables; with more than one table each table also gets a record (subgroup
``table:NAME``).
Range: 0 (same distribution) upwards.
Direction: lower is better.
Reference: the same distance for the real holdout patients against the training patients.
Details: per table the means, medians, 90th percentiles, the raw Wasserstein distance and the
Kolmogorov–Smirnov statistic.
Limitations: counts only: two timelines with the same number of events can differ in every
other way; a table whose real counts do not vary is scaled by its mean (or 1) instead.
Citation: the Wasserstein (earth mover's) distance, Villani 2009, *Optimal Transport: Old and
New*; the Kolmogorov–Smirnov statistic, Smirnov 1948.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from scipy.stats import ks_2samp, wasserstein_distance

from healthsynth.data import Dataset
from healthsynth.evaluate._base import Measure, MetricInfo, MetricRecord
from healthsynth.evaluate.timeline._prepare import Timelines
from healthsynth.evaluate.timeline._records import sides

__all__ = ["INFO", "compute", "counts_per_patient"]

NAME = "events_per_patient"
DIMENSION = "fidelity"


INFO = MetricInfo(
    name=NAME,
    dimension=DIMENSION,
    kind="timelines",
    summary="Whether synthetic patients have as many events as real ones.",
    measures=(
        Measure(
            NAME,
            "lower",
            "Wasserstein distance between real and synthetic numbers of events per patient, "
            "in real standard deviations, per table; 0 = same distribution.",
            low=0,
        ),
    ),
)


def counts_per_patient(tl: Timelines, table: str) -> np.ndarray:
    """Events in ``table`` per patient (zeros included)."""
    p = tl.events.loc[tl.events["table"] == table, "p"].to_numpy()
    return np.bincount(p, minlength=tl.n).astype(float)


def _compare(a: np.ndarray, b: np.ndarray) -> dict[str, Any]:
    if len(a) == 0 or len(b) == 0:
        return {"distance": float("nan")}
    scale = float(a.std()) or float(a.mean()) or 1.0
    w = float(wasserstein_distance(a, b))
    return {
        "distance": w / scale,
        "wasserstein": w,
        "scale": scale,
        "ks": float(ks_2samp(a, b).statistic),
        "mean_real": float(a.mean()),
        "mean_synthetic": float(b.mean()),
        "median_real": float(np.median(a)),
        "median_synthetic": float(np.median(b)),
        "p90_real": float(np.percentile(a, 90)),
        "p90_synthetic": float(np.percentile(b, 90)),
    }


def _score(real: Timelines, other: Timelines, tables: list[str]) -> dict[str, dict[str, Any]]:
    return {t: _compare(counts_per_patient(real, t), counts_per_patient(other, t)) for t in tables}


def compute(
    *,
    real: Dataset | Timelines,
    synthetic: Dataset | Timelines,
    holdout: Dataset | Timelines | None = None,
    seed: int = 0,
) -> list[MetricRecord]:
    """Standardized Wasserstein distance of events per patient, per table (lower is better).

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
        One overall ``events_per_patient`` record, and one per table when there are several.
    """
    r, s, h = sides(real, synthetic, holdout)
    tables = list(r.dataset.event_tables)
    syn = _score(r, s, tables)
    ref = _score(r, h, tables) if h is not None else None

    def mean(d: dict[str, dict[str, Any]] | None) -> float | None:
        if d is None:
            return None
        return float(np.mean([v["distance"] for v in d.values()]))

    out = [
        MetricRecord(
            name=NAME,
            dimension=DIMENSION,
            value=mean(syn),
            direction="lower",
            reference=mean(ref),
            details={"tables": syn, "statistic": "wasserstein / real standard deviation"},
        )
    ]
    if len(tables) > 1:
        for t in tables:
            out.append(
                MetricRecord(
                    name=NAME,
                    dimension=DIMENSION,
                    subgroup=f"table:{t}",
                    value=syn[t]["distance"],
                    direction="lower",
                    reference=ref[t]["distance"] if ref is not None else None,
                    details=syn[t],
                )
            )
    return out
