"""Exposure (Carlini et al. 2019, "The Secret Sharer"): how far a model singles a record out.

A canary is ranked by the model's likelihood among ``N`` candidates drawn from the same
domain; with ``rank`` its place (1: the model finds it more likely than every candidate),

    exposure = log2(N + 1) - log2(rank).

A model that never saw the canary ranks it like any candidate, so its rank is uniform on
1..N+1 and its exposure averages 1/ln 2 ≈ 1.44 bits; a model that memorised it puts it first,
at the most the candidates can show, log2(N + 1) bits (13.3 for 10,000 candidates). Ties
count half.
"""

from __future__ import annotations

import math

import numpy as np

__all__ = ["CHANCE_EXPOSURE", "exposure", "mean_interval", "more_exposed_p_value"]

#: Mean exposure of a record the model never saw (E[-log2 U], U uniform on (0, 1]).
CHANCE_EXPOSURE = 1 / math.log(2)


def exposure(record_scores: np.ndarray, candidate_scores: np.ndarray) -> np.ndarray:
    """Exposure in bits of each record's score among the candidates' scores (higher: likelier).

    Parameters
    ----------
    record_scores
        The model's log-likelihood of each record.
    candidate_scores
        Its log-likelihood of each of the ``N`` candidates.
    """
    cand = np.sort(np.asarray(candidate_scores, float))
    rec = np.asarray(record_scores, float)
    above = len(cand) - np.searchsorted(cand, rec, side="right")
    ties = np.searchsorted(cand, rec, side="right") - np.searchsorted(cand, rec, side="left")
    rank = 1.0 + above + 0.5 * ties
    return np.log2(len(cand) + 1) - np.log2(rank)


def mean_interval(
    values: np.ndarray, rng: np.random.Generator, *, resamples: int = 1000
) -> tuple[float, float]:
    """95 % bootstrap interval of the mean of ``values``."""
    v = np.asarray(values, float)
    if len(v) < 2:
        return float(v.mean()), float(v.mean())
    means = v[rng.integers(0, len(v), (resamples, len(v)))].mean(axis=1)
    lo, hi = np.percentile(means, [2.5, 97.5])
    return float(lo), float(hi)


def more_exposed_p_value(exposed: np.ndarray, reference: np.ndarray) -> float:
    """One-sided Mann–Whitney p-value that ``exposed`` tends to exceed ``reference``.

    Small values (below 0.05) say the canaries stand out more in the model that saw them than
    in the one that did not: the model memorised something of them.
    """
    from scipy.stats import mannwhitneyu

    a, b = np.asarray(exposed, float), np.asarray(reference, float)
    if len(a) == 0 or len(b) == 0:
        return math.nan
    if np.all(a == a[0]) and np.all(b == a[0]):
        return 1.0
    return float(mannwhitneyu(a, b, alternative="greater").pvalue)
