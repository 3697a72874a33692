"""Train on synthetic, test on real (TSTR).

Card
----
What: a gradient-boosting model (HistGradientBoosting) predicts the schema's target column from
the other columns; it is trained once on the synthetic rows and once on the real training rows,
and both are scored on the real holdout. Classification: ROC AUC (macro one-vs-rest for more
than two classes); regression: R².
Range: AUC 0.5–1, R² ≤ 1. Direction: higher is better; the reference is train-on-real.
Not applicable without a target column or a holdout.
Limitations: one model family, default settings; a small holdout gives a wide interval.
Citation: Esteban et al. 2017 (TSTR); the "utility" axis of synthcity and SDV.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from sklearn.ensemble import HistGradientBoostingClassifier, HistGradientBoostingRegressor
from sklearn.metrics import r2_score, roc_auc_score

from healthsynth.data import Schema
from healthsynth.evaluate._base import MetricRecord, features

__all__ = ["compute", "train_and_score"]


def train_and_score(
    train: pd.DataFrame, test: pd.DataFrame, schema: Schema, *, seed: int = 0
) -> tuple[float, str]:
    """Fit on ``train``, score on ``test``; returns (score, score name)."""
    target = schema.target
    assert target is not None
    col = schema[target]
    train = train[train[target].notna()]
    test = test[test[target].notna()]
    (xtr, xte), _, cat = features([train, test], schema, exclude=[target])
    cat_arg = cat if cat.any() else None
    if col.kind in ("categorical", "boolean"):
        classes = list(col.categories or [])
        ytr = pd.Categorical(train[target], categories=classes).codes
        yte = pd.Categorical(test[target], categories=classes).codes
        present = np.unique(yte)
        if len(np.unique(ytr)) < 2:
            return 0.5, "auc"  # a model that saw one class cannot rank
        clf = HistGradientBoostingClassifier(
            max_iter=200, categorical_features=cat_arg, random_state=seed
        )
        clf.fit(xtr, ytr)
        proba = np.zeros((len(xte), len(classes)))
        proba[:, clf.classes_] = clf.predict_proba(xte)
        if len(present) < 2:
            return float("nan"), "auc"
        if len(classes) == 2:
            return float(roc_auc_score(yte, proba[:, 1])), "auc"
        proba = proba[:, present] / np.clip(proba[:, present].sum(1, keepdims=True), 1e-12, None)
        remap = {c: i for i, c in enumerate(present)}
        return float(
            roc_auc_score([remap[v] for v in yte], proba, multi_class="ovr", average="macro")
        ), "auc"
    reg = HistGradientBoostingRegressor(
        max_iter=200, categorical_features=cat_arg, random_state=seed
    )
    ytr = pd.to_numeric(train[target]).to_numpy(float)
    reg.fit(xtr, ytr)
    return float(r2_score(pd.to_numeric(test[target]).to_numpy(float), reg.predict(xte))), "r2"


def compute(
    *,
    real: pd.DataFrame,
    synthetic: pd.DataFrame,
    holdout: pd.DataFrame | None = None,
    schema: Schema,
    seed: int = 0,
) -> list[MetricRecord]:
    """TSTR score with train-on-real as the reference."""
    if schema.target is None or holdout is None:
        why = "no target column declared" if schema.target is None else "no holdout given"
        return [
            MetricRecord(
                name="tstr",
                dimension="utility",
                value=None,
                direction="higher",
                status="not_applicable",
                message=why,
            )
        ]
    tstr, kind = train_and_score(synthetic, holdout, schema, seed=seed)
    trtr, _ = train_and_score(real, holdout, schema, seed=seed)
    return [
        MetricRecord(
            name=f"tstr_{kind}",
            dimension="utility",
            value=tstr,
            direction="higher",
            reference=trtr,
            details={"target": schema.target, "train_on_real": trtr, "gap": trtr - tstr},
        )
    ]
