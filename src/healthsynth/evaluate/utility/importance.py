"""Feature-importance rank agreement: whether synthetic data teaches the same predictors.

Card
----
What: the TSTR models trained on synthetic and on real rows (:mod:`tstr`) are each explained by
permutation importance on the real holdout (scikit-learn's ``permutation_importance``, the drop
in ROC AUC or R² when a column is shuffled, 3 repeats, at most 2,000 holdout rows); the value is
the Spearman rank correlation between the two importance vectors.
Range: −1 to 1.
Direction: higher is better (1: same ranking).
Reference: none — 1 is the ideal. ``details`` holds both importance vectors.
Not applicable in the same cases as TSTR, or with fewer than three predictor columns.
Limitations: permutation importance spreads credit among correlated columns, so ranks of
near-equal columns swap easily; a single model family.
Citation: Breiman 2001 (permutation importance); used as a utility check in synthcity and in
Hernandez et al. 2022 (synthetic health data review).
Speed: the models (when the TSTR metric has not fitted them already) and the 2 × 3 × columns
shuffled predictions run on one OpenMP thread. Each prediction of a gradient-boosting model is a
short parallel region; on a shared machine a descheduled thread leaves the other spin-waiting,
which made this metric take 23 s on a 151-row table instead of under 1 s.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
from scipy.stats import spearmanr
from sklearn.inspection import permutation_importance
from threadpoolctl import threadpool_limits

from healthsynth.data import Schema
from healthsynth.evaluate._base import Measure, MetricInfo, MetricRecord, features, not_applicable
from healthsynth.evaluate.utility.tstr import fit_predict, why_not

__all__ = ["INFO", "compute"]


INFO = MetricInfo(
    name="importance_agreement",
    dimension="utility",
    kind="table",
    summary="Whether a model trained on synthetic rows relies on the same predictors.",
    measures=(
        Measure(
            "importance_agreement",
            "higher",
            "Spearman correlation between the permutation importances of models trained on "
            "real and on synthetic rows; 1 = same ranking.",
            low=-1,
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
    max_test_rows: int = 2_000,
    cache: dict[Any, Any] | None = None,
) -> list[MetricRecord]:
    """Spearman correlation of permutation importances, synthetic-trained vs real-trained."""
    why = why_not(schema, real, holdout)
    target = schema.target
    if why is None:
        _, names, _ = features([real.head(1)], schema, exclude=[target] if target else [])
        if len(names) < 3:
            why = "fewer than three predictor columns: a ranking says nothing"
    if why is not None:
        return [not_applicable("importance_agreement", "utility", why)]
    assert holdout is not None
    with threadpool_limits(limits=1, user_api="openmp"):  # see "Speed" in the card
        syn = fit_predict(synthetic, holdout, schema, seed=seed, cache=cache)
        ref = fit_predict(real, holdout, schema, seed=seed, cache=cache)
    rng = np.random.default_rng(seed)
    idx = np.arange(len(ref.y))
    if len(idx) > max_test_rows:
        idx = np.sort(rng.choice(len(idx), max_test_rows, replace=False))
    if syn.model is None:
        return [
            not_applicable(
                "importance_agreement", "utility", "the synthetic target has a single class"
            )
        ]
    scoring = "r2" if syn.task == "regression" else _auc_scoring(ref.y)
    imps = []
    with threadpool_limits(limits=1, user_api="openmp"):
        for p in (syn, ref):
            r = permutation_importance(
                p.model, p.x[idx], p.y[idx], scoring=scoring, n_repeats=3, random_state=seed
            )
            imps.append(r.importances_mean)
    rho = spearmanr(imps[0], imps[1]).statistic
    return [
        MetricRecord(
            name="importance_agreement",
            dimension="utility",
            value=float(rho) if np.isfinite(rho) else None,
            direction="higher",
            details={
                "columns": names,
                "synthetic": imps[0].tolist(),
                "real": imps[1].tolist(),
            },
            message=None if np.isfinite(rho) else "importances are constant",
        )
    ]


def _auc_scoring(y: np.ndarray) -> str:
    return "roc_auc" if len(np.unique(y)) == 2 else "roc_auc_ovr"
