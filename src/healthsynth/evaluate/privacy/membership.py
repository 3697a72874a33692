"""Membership inference: whether the synthetic data tell who was in the training data.

Card
----
What: two attacks score target rows; the targets are an equal number of training rows (members)
and holdout rows (non-members), at most ``max_targets`` (1,000) of each, drawn with the seed. The
record's value is the attack's ROC AUC at separating members from non-members.

- subgroup ``distance``: score = −(distance of the target to its closest synthetic row), the
  Gower-style distance of :mod:`healthsynth.data._distance`. Catches copying and near-copying.
- subgroup ``density``: in the spirit of DOMIAS, score = density of the synthetic data at the
  target / density of a reference real population at the target, both estimated by k-nearest
  neighbours (k = 5) in the encoded space: a k-NN density is ∝ k / (n r_k^d), so the log ratio is
  a constant plus d·(log r_k,ref − log r_k,syn), and the AUC — a rank statistic — needs only
  ``log r_k,ref − log r_k,syn`` (neither d nor the sample sizes). The reference population is
  the holdout minus the targets: the holdout is split in two folds and each fold's targets are
  scored against a reference made of the other holdout rows (cross-fitting, so no target is
  in its own reference). Catches a generator that over-weights the neighbourhoods of its
  training rows without copying them.

Range: AUC in [0, 1].
Direction: target 0.5 (no leak); above 0.5 the synthetic data reveal membership (an AUC well
below 0.5 is also a signal an attacker could invert).
Reference: 0.5, what synthetic data independent of the training rows give.
Sample sizes: ≤ 1,000 member and ≤ 1,000 non-member targets, ≤ 10,000 synthetic rows and
≤ 10,000 reference rows (seeded subsamples; the sizes are in ``details``). The interval is a 95 %
bootstrap interval (200 resamples of members and non-members separately). ``details`` also
gives the true-positive rate at 1 % and 10 % false-positive rate, the figures that matter for the
few most exposed people.
Limitations: an attacker with a stronger model (shadow models, the generator's weights) can do
better, so an AUC near 0.5 is evidence, not proof, of privacy. With few holdout rows the AUC is
noisy: read the interval. Needs a holdout; without one the records are not applicable.
Citation: Shokri et al. 2017; Hayes et al. 2019 (LOGAN); van Breugel, Sun, Qian & van der
Schaar 2023, "Membership Inference Attacks against Synthetic Data through Overfitting Detection"
(DOMIAS), AISTATS.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
from scipy.stats import rankdata

from healthsynth.data import Schema
from healthsynth.data._distance import RowEncoder, nearest_distances
from healthsynth.evaluate._base import Measure, MetricInfo, MetricRecord, not_applicable
from healthsynth.evaluate.privacy._sample import subsample

__all__ = ["INFO", "compute"]

NAME = "membership_inference_auc"
_K_DENSITY = 5
_BOOTSTRAP = 200


INFO = MetricInfo(
    name="membership_inference",
    dimension="privacy",
    kind="table",
    summary="Whether the synthetic data tell who was in the training data.",
    measures=(
        Measure(
            NAME,
            "target",
            "ROC AUC of an attack telling training rows from holdout rows using the synthetic "
            "data; 0.5 = no better than chance.",
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
    max_targets: int = 1000,
    max_rows: int = 10_000,
) -> list[MetricRecord]:
    """Distance- and density-based membership-inference AUCs.

    Parameters
    ----------
    real
        The generator's training rows (the members).
    synthetic
        Generated rows, all the attacker sees.
    holdout
        Real rows the generator never saw (the non-members and the density reference).
    schema
        The table's schema (its modelled columns are compared).
    seed
        Seed of the target draw, the subsampling and the bootstrap.
    max_targets
        At most this many member and as many non-member targets.
    max_rows
        At most this many synthetic rows, and reference rows, are searched.

    Returns
    -------
    list of MetricRecord
        ``membership_inference_auc`` with subgroups ``distance`` and ``density``.
    """
    if holdout is None or len(holdout) < 2 or len(real) == 0 or len(synthetic) == 0:
        if holdout is None:
            why = (
                "no holdout: membership inference needs real rows the generator never saw "
                "(at least 2) as non-members"
            )
        elif len(holdout) < 2:
            why = f"the holdout has {len(holdout)} row; at least 2 are needed as non-members"
        else:
            why = "no training or synthetic rows to attack with"
        return [
            not_applicable(NAME, "privacy", why, subgroup=attack, direction="target")
            for attack in ("distance", "density")
        ]
    rng = np.random.default_rng(seed)
    n_t = min(max_targets, len(real), len(holdout))
    members = rng.choice(len(real), n_t, replace=False)
    order = rng.permutation(len(holdout))
    non_members = order[:n_t]
    syn = subsample(synthetic, max_rows, rng)

    enc = RowEncoder(schema).fit(real)
    mx = enc.transform(real.iloc[members])
    hx_all = enc.transform(holdout)
    nx = hx_all[non_members]
    sx = enc.transform(syn)
    targets = np.vstack([mx, nx])
    labels = np.r_[np.ones(n_t), np.zeros(n_t)]

    # (a) distance attack
    d_syn_k = nearest_distances(targets, sx, k=_K_DENSITY)
    score_distance = -d_syn_k[:, 0]

    # (b) density attack, cross-fitted over two folds of the holdout
    fold_of_target = np.r_[np.arange(n_t) % 2, np.arange(n_t) % 2]
    target_folds = [non_members[0::2], non_members[1::2]]
    log_r_ref = np.empty(2 * n_t)
    ref_sizes = []
    for f in (0, 1):
        keep = np.setdiff1d(np.arange(len(holdout)), target_folds[f], assume_unique=True)
        if len(keep) > max_rows:
            keep = rng.choice(keep, max_rows, replace=False)
        ref_sizes.append(len(keep))
        at = fold_of_target == f
        if not at.any():
            continue
        d_ref = nearest_distances(targets[at], hx_all[keep], k=_K_DENSITY)
        log_r_ref[at] = _log_radius(d_ref)
    score_density = log_r_ref - _log_radius(d_syn_k)

    sizes: dict[str, Any] = {
        "n_members": int(n_t),
        "n_non_members": int(n_t),
        "n_synthetic": len(syn),
        "n_synthetic_total": len(synthetic),
    }
    out = []
    for attack, score, extra in (
        ("distance", score_distance, {}),
        ("density", score_density, {"k": _K_DENSITY, "n_reference": ref_sizes}),
    ):
        auc = float(_auc(labels, score))
        out.append(
            MetricRecord(
                name=NAME,
                dimension="privacy",
                value=auc,
                direction="target",
                subgroup=attack,
                interval=_bootstrap_auc(labels, score, rng),
                reference=0.5,
                details={**sizes, **extra, **_tpr_at_fpr(labels, score)},
            )
        )
    return out


def _auc(labels: np.ndarray, score: np.ndarray) -> float:
    """ROC AUC by the rank-sum (Mann-Whitney) identity; ties count one half."""
    pos = labels == 1
    n_pos, n_neg = int(pos.sum()), int((~pos).sum())
    ranks = rankdata(score)
    return float((ranks[pos].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))


def _log_radius(d: np.ndarray) -> np.ndarray:
    """Log of the distance to the k-th neighbour (the last column), floored to stay finite."""
    return np.log(np.maximum(d[:, -1], 1e-12))


def _bootstrap_auc(
    labels: np.ndarray, score: np.ndarray, rng: np.random.Generator
) -> tuple[float, float]:
    pos, neg = np.flatnonzero(labels == 1), np.flatnonzero(labels == 0)
    aucs = []
    for _ in range(_BOOTSTRAP):
        idx = np.r_[rng.choice(pos, len(pos)), rng.choice(neg, len(neg))]
        aucs.append(_auc(labels[idx], score[idx]))
    lo, hi = np.percentile(aucs, [2.5, 97.5])
    return float(lo), float(hi)


def _tpr_at_fpr(labels: np.ndarray, score: np.ndarray) -> dict[str, float]:
    """Share of members flagged when the threshold flags 1 % / 10 % of non-members."""
    neg = np.sort(score[labels == 0])[::-1]
    pos = score[labels == 1]
    out = {}
    for fpr in (0.01, 0.1):
        n_fp = int(np.floor(fpr * len(neg)))
        # a threshold strictly above the (n_fp+1)-th highest non-member score
        threshold = neg[n_fp] if n_fp < len(neg) else -np.inf
        out[f"tpr_at_fpr_{fpr:g}"] = float(np.mean(pos > threshold))
    return out
