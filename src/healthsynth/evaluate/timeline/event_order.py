"""Order of first events.

Card
----
What: for every pair of coded items A and B (diagnoses, comorbidities), among the patients who
have both, the share whose first A comes before their first B (a tie on the same day counts one
half), in the real training patients and in the synthetic patients. The value is the mean
absolute difference of these shares over the pairs that at least ``min_support`` (30) patients
have on both sides.
Range: 0 (same order everywhere) to 1 (every pair reversed).
Direction: lower is better.
Reference: the same difference for the real holdout patients against the training patients
(over the pairs with enough support in the holdout).
Details: per pair the two shares and supports (the 50 largest gaps), the number of pairs
compared, and the pairs with enough real support that the synthetic data lacks.
Sample size: at most ``max_items`` (50) coded items, the most prevalent in the real data.
Not applicable when no pair reaches the support on both sides.
Limitations: first occurrences only (recurrences and spacing are ignored); the share of a pair
with 30 patients carries a sampling error of about 0.09, so the reference is well above 0 for
small cohorts; pairs where the synthetic data lacks support are listed but not scored, so
check ``cooccurrence_r2`` alongside.
Citation: Pang et al. 2024, "CEHR-GPT: generating electronic health records with chronological
patient timelines", a generator built to keep the chronology of a patient's history (the
order of events and the time between them), which this metric and ``time_between_events``
check from the outside.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from healthsynth.data import Dataset
from healthsynth.evaluate._base import Measure, MetricInfo, MetricRecord, not_applicable
from healthsynth.evaluate.timeline._prepare import Timelines
from healthsynth.evaluate.timeline._records import headline, reference, sides
from healthsynth.evaluate.timeline.prevalence import prevalence

__all__ = ["INFO", "compute", "order_shares"]

NAME = "event_order"
DIMENSION = "fidelity"
_SHOWN = 50


INFO = MetricInfo(
    name=NAME,
    dimension=DIMENSION,
    kind="timelines",
    summary="Whether coded events come first in the same order as in the real patients.",
    measures=(
        Measure(
            NAME,
            "lower",
            "Mean absolute difference, over pairs of coded events, of the share of patients "
            "whose first A precedes their first B; 0 = same order.",
            low=0,
            high=1,
        ),
    ),
)


def order_shares(tl: Timelines, labels: list[str]) -> tuple[np.ndarray, np.ndarray]:
    """Share "first A before first B" and support for the upper-triangle pairs of ``labels``."""
    first = tl.first_times(labels)
    i, j = np.triu_indices(len(labels), k=1)
    shares, support = np.full(len(i), np.nan), np.zeros(len(i), int)
    for k, (a, b) in enumerate(zip(i, j, strict=True)):
        ta, tb = first[:, a], first[:, b]
        both = np.isfinite(ta) & np.isfinite(tb)
        n = int(both.sum())
        support[k] = n
        if n:
            shares[k] = float(np.mean(ta[both] < tb[both]) + 0.5 * np.mean(ta[both] == tb[both]))
    return shares, support


def _score(
    real: Timelines, other: Timelines, labels: list[str], min_support: int
) -> tuple[float, dict[str, Any]]:
    a, na = order_shares(real, labels)
    b, nb = order_shares(other, labels)
    i, j = np.triu_indices(len(labels), k=1)
    names = [f"{labels[x]} before {labels[y]}" for x, y in zip(i, j, strict=True)]
    real_ok = na >= min_support
    used = real_ok & (nb >= min_support)
    gaps = np.abs(a - b)
    order = [k for k in np.argsort(-np.where(used, gaps, -1), kind="stable") if used[k]][:_SHOWN]
    details = {
        "min_support": min_support,
        "n_pairs": int(used.sum()),
        "n_pairs_real_support": int(real_ok.sum()),
        "pairs": {
            names[k]: {
                "real": a[k],
                "synthetic": b[k],
                "support_real": int(na[k]),
                "support_synthetic": int(nb[k]),
            }
            for k in order
        },
        "lacking_synthetic_support": [names[k] for k in np.flatnonzero(real_ok & ~used)][:_SHOWN],
    }
    value = float(gaps[used].mean()) if used.any() else float("nan")
    return value, details


def compute(
    *,
    real: Dataset | Timelines,
    synthetic: Dataset | Timelines,
    holdout: Dataset | Timelines | None = None,
    seed: int = 0,
    min_support: int = 30,
    max_items: int = 50,
) -> list[MetricRecord]:
    """Mean absolute difference of "first A before first B" shares (lower is better).

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
    min_support
        A pair is compared when at least this many patients have both items on each side.
    max_items
        Use at most this many coded items (the most prevalent ones in the real data).

    Returns
    -------
    list of MetricRecord
        One ``event_order`` record.
    """
    r, s, h = sides(real, synthetic, holdout)
    codes = list(r.code_labels)
    prev = prevalence(r, codes)
    labels = sorted(codes[k] for k in np.argsort(-prev, kind="stable")[:max_items])
    if len(labels) < 2:
        return [
            not_applicable(
                NAME,
                DIMENSION,
                f"the real data has {len(labels)} coded item(s) (events without a number); "
                "an order needs two",
                direction="lower",
            )
        ]
    value, details = _score(r, s, labels, min_support)
    if not np.isfinite(value):
        why = (
            f"no pair of coded items is shared by {min_support} real patients"
            if details["n_pairs_real_support"] == 0
            else f"none of the {details['n_pairs_real_support']} pairs of coded items that "
            f"{min_support} real patients share has {min_support} synthetic patients"
        )
        return [not_applicable(NAME, DIMENSION, why, direction="lower", details=details)]
    ref = reference(lambda tl: _score(r, tl, labels, min_support)[0], h)
    return headline(NAME, DIMENSION, value, direction="lower", reference=ref, details=details)
