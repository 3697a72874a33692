"""Detection AUC: how well a classifier tells synthetic rows from real ones.

Card
----
What: equal numbers of real training rows and synthetic rows (at most ``max_rows`` each) are
labelled 0/1; a gradient-boosting classifier (scikit-learn's HistGradientBoostingClassifier,
native missing values and categories) is cross-validated (5 folds) and the ROC AUC of its
out-of-fold scores is reported.
Range: 0.5 (indistinguishable) to 1 (fully separable). A cross-validated AUC well below 0.5 is
not "better than indistinguishable": it happens when synthetic rows duplicate training rows, so
the same row appears with both labels in different folds and the classifier is forced to be
wrong. Such a table *is* distinguishable, so the AUC is folded: the value is max(AUC, 1 − AUC),
and ``details["raw_auc"]`` keeps the unfolded figure.
Direction: lower is better (0.5 is the ideal).
Reference: the same score for the real holdout against the training rows (no interval).
Interval: 95% percentile bootstrap over the rows' out-of-fold scores (200 resamples, each AUC
folded): it covers the sampling variation of which rows were scored, not that of refitting the
classifier on other rows, so it is narrower than a bootstrap over refits would be.
Limitations: one classifier family; small tables give wide intervals.
Citation: the "discriminator" / detection metric of synthcity, SDMetrics (LogisticDetection)
and GReaT's evaluation.
Speed: the ten fits (five folds, synthetic and holdout) run on one OpenMP thread. Gradient
boosting opens a parallel region for every tree node, and on a shared machine a thread that is
descheduled leaves the others spin-waiting at each barrier: with two threads on two busy cores
one fit took 50 s instead of 0.5 s. The bootstrap counts the drawn rows per distinct score
instead of sorting each resample (same AUCs as ``roc_auc_score``).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.metrics import roc_auc_score
from sklearn.model_selection import StratifiedKFold, cross_val_predict
from threadpoolctl import threadpool_limits

from healthsynth.data import Schema
from healthsynth.evaluate._base import Measure, MetricInfo, MetricRecord, features, not_applicable

__all__ = ["INFO", "bootstrap_aucs", "compute", "detection_auc"]


INFO = MetricInfo(
    name="detection_auc",
    dimension="fidelity",
    kind="table",
    summary="How well a classifier tells synthetic rows from real ones.",
    measures=(
        Measure(
            "detection_auc",
            "lower",
            "ROC AUC of a classifier trained to tell synthetic rows from real ones (folded to "
            "at least 0.5); 0.5 = indistinguishable, 1 = fully separable.",
            low=0.5,
            high=1,
        ),
    ),
)


def detection_auc(
    real: pd.DataFrame,
    other: pd.DataFrame,
    schema: Schema,
    *,
    seed: int = 0,
    max_rows: int = 5000,
    n_boot: int = 200,
) -> tuple[float, tuple[float, float], float]:
    """Folded cross-validated AUC of real-vs-other, its bootstrap 95% interval, the raw AUC.

    ``n_boot=0`` skips the interval (it is then the point value twice).
    """
    rng = np.random.default_rng(seed)
    n = min(len(real), len(other), max_rows)
    a = real.iloc[rng.choice(len(real), n, replace=False)]
    b = other.iloc[rng.choice(len(other), n, replace=False)]
    (xa, xb), _, cat = features([a, b], schema)
    x = np.vstack([xa, xb])
    y = np.r_[np.zeros(n), np.ones(n)]
    clf = HistGradientBoostingClassifier(
        max_iter=200,
        learning_rate=0.1,
        categorical_features=cat if cat.any() else None,
        random_state=seed,
        early_stopping=False,
    )
    folds = StratifiedKFold(n_splits=5, shuffle=True, random_state=seed)
    # one OpenMP thread: see "Speed" in the card
    with threadpool_limits(limits=1, user_api="openmp"):
        scores = cross_val_predict(clf, x, y, cv=folds, method="predict_proba")[:, 1]
    raw = float(roc_auc_score(y, scores))
    auc = max(raw, 1.0 - raw)
    boots = bootstrap_aucs(y, scores, rng, n_boot)
    boots = np.maximum(boots, 1.0 - boots)
    lo, hi = np.percentile(boots, [2.5, 97.5]) if len(boots) else (auc, auc)
    return auc, (float(lo), float(hi)), raw


def bootstrap_aucs(
    y: np.ndarray, scores: np.ndarray, rng: np.random.Generator, n_boot: int
) -> np.ndarray:
    """ROC AUCs of ``n_boot`` resamples (with replacement) of the (label, score) pairs.

    The Mann-Whitney form of the AUC, with ties counted as one half, computed from how many
    times each distinct score is drawn with each label: the same number ``roc_auc_score`` gives
    on the resampled rows, without sorting each resample. Resamples holding a single class are
    skipped.
    """
    _, level = np.unique(scores, return_inverse=True)  # rank of each row's score among distinct
    k = int(level.max()) + 1 if len(level) else 0
    pos_row = y == 1
    out = []
    for _ in range(n_boot):
        idx = rng.integers(0, len(y), len(y))
        drawn = level[idx]
        pos = np.bincount(drawn[pos_row[idx]], minlength=k).astype(float)
        neg = np.bincount(drawn[~pos_row[idx]], minlength=k).astype(float)
        n_pos, n_neg = pos.sum(), neg.sum()
        if n_pos == 0 or n_neg == 0:
            continue
        below = np.cumsum(neg) - neg  # negatives scored strictly lower
        out.append(float(pos @ (below + 0.5 * neg)) / (n_pos * n_neg))
    return np.asarray(out)


def compute(
    *,
    real: pd.DataFrame,
    synthetic: pd.DataFrame,
    holdout: pd.DataFrame | None = None,
    schema: Schema,
    seed: int = 0,
) -> list[MetricRecord]:
    """Detection AUC of synthetic vs real (0.5 is ideal)."""
    if min(len(real), len(synthetic)) < 20:
        return [
            not_applicable(
                "detection_auc",
                "fidelity",
                "a cross-validated detection classifier needs at least 20 real and 20 "
                f"synthetic rows; got {len(real)} and {len(synthetic)}",
                direction="lower",
            )
        ]
    auc, interval, raw = detection_auc(real, synthetic, schema, seed=seed)
    ref = None
    if holdout is not None and len(holdout) >= 20:
        ref = detection_auc(real, holdout, schema, seed=seed, n_boot=0)[0]
    return [
        MetricRecord(
            name="detection_auc",
            dimension="fidelity",
            value=auc,
            direction="lower",
            interval=interval,
            reference=ref,
            details={"raw_auc": raw},
        )
    ]
