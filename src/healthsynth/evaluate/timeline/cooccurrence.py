"""Co-occurrence R² of coded events.

Card
----
What: for every pair of coded items (events without a number: diagnoses, comorbidities) the
share of patients who have both at any time, in the real training patients and in the
synthetic patients. The value is the coefficient of determination of the synthetic pair shares
as predictions of the real ones, ``1 - SS_res / SS_tot`` over pairs; the squared Pearson
correlation is in ``details``.
Range: at most 1; 0 = no better than the mean real pair share; negative = worse.
Direction: higher is better.
Reference: the same R² for the real holdout patients against the training patients.
Details: the pairs with the largest gaps (at most 50), the Pearson r² and the number of pairs.
Sample size: at most ``max_items`` (50) items, the most prevalent in the real data (then any
the synthetic data invents), so at most 1,225 pairs.
Not applicable with fewer than three coded items (fewer than three pairs), or when every pair
has the same real share.
Limitations: "both at any time" ignores order and spacing (``event_order``); a generator that
gets each item's share right and pairs them independently still scores well when the items
are common, because the product of two shares is then close to their joint share; pairs of
lab tests are left out (nearly every patient with one test has the others).
Citation: Theodorou et al. 2023 (HALO), which reports R² of co-occurrence rates of code pairs.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from healthsynth.data import Dataset
from healthsynth.evaluate._base import Measure, MetricInfo, MetricRecord, not_applicable
from healthsynth.evaluate.timeline._prepare import Timelines, pearson_r2, r2_score
from healthsynth.evaluate.timeline._records import headline, sides
from healthsynth.evaluate.timeline.prevalence import prevalence

__all__ = ["INFO", "compute", "pair_shares"]

NAME = "cooccurrence_r2"
DIMENSION = "fidelity"
_SHOWN = 50


INFO = MetricInfo(
    name=NAME,
    dimension=DIMENSION,
    kind="timelines",
    summary="Whether pairs of coded events occur together as often as in the real patients.",
    measures=(
        Measure(
            NAME,
            "higher",
            "R² of the share of patients with both items of each pair of coded events, "
            "synthetic against real (HALO); 1 = identical.",
            high=1,
        ),
    ),
)


def pair_shares(tl: Timelines, labels: list[str]) -> np.ndarray:
    """Share of patients with both items, for the upper-triangle pairs of ``labels``."""
    m = tl.presence(labels).astype(float)
    joint = m.T @ m / max(tl.n, 1)
    return joint[np.triu_indices(len(labels), k=1)]  # type: ignore[no-any-return]


def _items(real: Timelines, synthetic: Timelines, max_items: int) -> list[str]:
    codes = list(real.code_labels)
    prev = prevalence(real, codes)
    ranked = [codes[i] for i in np.argsort(-prev, kind="stable")]
    invented = [
        lab for lab in synthetic.code_labels if lab not in set(real.labels) and lab not in codes
    ]
    if invented:
        sp = prevalence(synthetic, invented)
        ranked += [invented[i] for i in np.argsort(-sp, kind="stable")]
    return sorted(ranked[:max_items])


def _score(real: Timelines, other: Timelines, labels: list[str]) -> tuple[float, dict[str, Any]]:
    a, b = pair_shares(real, labels), pair_shares(other, labels)
    i, j = np.triu_indices(len(labels), k=1)
    gaps = np.abs(a - b)
    order = np.argsort(-gaps, kind="stable")[:_SHOWN]
    return r2_score(a, b), {
        "pearson_r2": pearson_r2(a, b),
        "n_items": len(labels),
        "n_pairs": len(a),
        "largest_gaps": {
            f"{labels[i[k]]} & {labels[j[k]]}": {"real": a[k], "synthetic": b[k]} for k in order
        },
    }


def compute(
    *,
    real: Dataset | Timelines,
    synthetic: Dataset | Timelines,
    holdout: Dataset | Timelines | None = None,
    seed: int = 0,
    max_items: int = 50,
) -> list[MetricRecord]:
    """R² of pairwise co-occurrence shares of coded items (higher is better).

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
    max_items
        Use at most this many coded items (the most prevalent ones).

    Returns
    -------
    list of MetricRecord
        One ``cooccurrence_r2`` record.
    """
    r, s, h = sides(real, synthetic, holdout)
    labels = _items(r, s, max_items)
    if len(labels) < 3:
        return [
            not_applicable(
                NAME,
                DIMENSION,
                f"the real data has {len(labels)} coded item(s) (events without a number); "
                "co-occurrence needs at least three",
            )
        ]
    value, details = _score(r, s, labels)
    if not np.isfinite(value):
        return [
            not_applicable(NAME, DIMENSION, "every pair has the same real share; R² is undefined")
        ]
    ref = _score(r, h, labels)[0] if h is not None else None
    return headline(NAME, DIMENSION, value, direction="higher", reference=ref, details=details)
