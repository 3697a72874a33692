"""Train on synthetic, test on real (TSTR).

Card
----
What: a gradient-boosting model (scikit-learn's HistGradientBoosting, native missing values and
categories) predicts the schema's target from the other columns. It is trained once on the
synthetic rows and once on the real training rows, and both are scored on the real holdout.
Classification: ROC AUC (macro one-vs-rest for more than two classes), macro F1 of the predicted
class, and the expected calibration error (ECE, 10 equal-width bins of the top-class
probability). Regression: R².
Range: AUC 0–1 (0.5 = chance), F1 0–1, R² at most 1; ECE 0–1.
Direction: higher is better for AUC, F1 and R²; lower is better for ECE.
Reference: the same score for the model trained on the real training rows (train-on-real).
Interval: a 95% bootstrap over the holdout rows (AUC, F1, R²).
Not applicable without a target column, without a holdout, or when the real target has fewer
than two classes. Holdout rows without a target value, or with a class the real rows never had,
are left out (their count is in ``details``). A synthetic table with a single class scores
AUC 0.5 (the model cannot rank).
Limitations: one model family with default settings; at most ``max_train_rows`` training rows;
a small holdout gives a wide interval.
Citation: Esteban, Hyland & Rätsch 2017 (TSTR); the "utility" axis of synthcity and SDV.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from sklearn.ensemble import HistGradientBoostingClassifier, HistGradientBoostingRegressor
from sklearn.metrics import f1_score, r2_score, roc_auc_score

from healthsynth.data import Schema
from healthsynth.evaluate._base import Measure, MetricInfo, MetricRecord, features, not_applicable

__all__ = ["INFO", "Predictions", "compute", "fit_predict", "score", "why_not"]

_N_BOOT = 200


_TSTR = "Train on synthetic, test on real"
INFO = MetricInfo(
    name="tstr",
    dimension="utility",
    kind="table",
    summary=f"{_TSTR}: a model trained on synthetic rows and scored on the real holdout; the "
    "reference is the same model trained on real rows.",
    measures=(
        Measure(
            "tstr_auc",
            "higher",
            f"{_TSTR} (ROC AUC on the holdout); the reference is the same model trained on the "
            "real training rows.",
            low=0,
            high=1,
        ),
        Measure(
            "tstr_r2",
            "higher",
            f"{_TSTR} (R² on the holdout); the reference is the same model trained on the real "
            "training rows.",
            high=1,
        ),
        Measure(
            "tstr_f1",
            "higher",
            f"{_TSTR} (macro F1 on the holdout); the reference is the same model trained on the "
            "real training rows.",
            low=0,
            high=1,
        ),
        Measure(
            "tstr_ece",
            "lower",
            "Calibration error of the train-on-synthetic model on the holdout (expected "
            "calibration error, 10 bins).",
            low=0,
            high=1,
        ),
    ),
)


@dataclass
class Predictions:
    """A fitted model's predictions on a test table."""

    task: str  # "classification" | "regression"
    y: np.ndarray  # class codes (classification) or values, for test rows with a target
    pred: np.ndarray  # class probabilities (rows × classes) or predicted values
    rows: np.ndarray  # positions of those test rows in the test table
    model: Any
    x: np.ndarray  # the encoded test features (for permutation importance)
    single_class: bool = False


def why_not(schema: Schema, real: pd.DataFrame, holdout: pd.DataFrame | None) -> str | None:
    """Why utility metrics cannot apply to these tables, or None when they can."""
    target = schema.target
    if target is None:
        return "no target column declared (pass --target COLUMN)"
    if holdout is None:
        return "no holdout given: utility is measured on real rows the generator never saw"
    if target not in real.columns:
        return f"the target '{target}' is not among the compared columns"
    col = schema[target]
    if col.kind in ("categorical", "boolean"):
        if real[target].nunique() < 2:
            return f"the real target '{target}' has a single class, so there is nothing to predict"
        if holdout[target].nunique() < 2:
            return f"the holdout's target '{target}' has a single class, so AUC is undefined"
    if len(holdout[holdout[target].notna()]) < 5:
        return "the holdout has fewer than 5 rows with a target value"
    return None


def fit_predict(
    train: pd.DataFrame,
    test: pd.DataFrame,
    schema: Schema,
    *,
    seed: int = 0,
    max_train_rows: int = 20_000,
    cache: dict[Any, Any] | None = None,
) -> Predictions:
    """Fit the utility model on ``train`` and predict the ``test`` rows that have a target.

    ``cache`` (the evaluation's shared dict) lets the utility and fairness metrics reuse one
    fitted model per (train, test) pair within one evaluation.
    """
    if cache is not None:
        key = ("fit_predict", id(train), id(test), seed, max_train_rows)
        if key not in cache:
            cache[key] = fit_predict(train, test, schema, seed=seed, max_train_rows=max_train_rows)
        return cache[key]  # type: ignore[no-any-return]
    target = schema.target
    assert target is not None
    col = schema[target]
    train = train[train[target].notna()]
    if col.kind in ("categorical", "boolean"):  # a class no real row has cannot be scored
        train = train[train[target].isin(list(col.categories or []))]
    if len(train) > max_train_rows:
        rng = np.random.default_rng(seed)
        train = train.iloc[rng.choice(len(train), max_train_rows, replace=False)]
    usable = np.array(test[target].notna(), dtype=bool)
    if col.kind in ("categorical", "boolean"):
        # a holdout class the real data never had cannot be predicted: leave those rows out
        usable &= test[target].isin(list(col.categories or [])).to_numpy()
    rows = np.flatnonzero(usable)
    test = test.iloc[rows]
    (xtr, xte), _, cat = features([train, test], schema, exclude=[target])
    # a feature missing in every training row carries nothing to learn (and breaks binning)
    empty = np.isnan(xtr).all(axis=0) if len(xtr) else np.zeros(xtr.shape[1], bool)
    xtr[:, empty] = 0.0
    xte[:, empty] = 0.0
    cat_arg = cat if cat.any() else None
    if col.kind in ("categorical", "boolean"):
        classes = list(col.categories or [])
        ytr = pd.Categorical(train[target], categories=classes).codes
        yte = pd.Categorical(test[target], categories=classes).codes
        proba = np.zeros((len(xte), len(classes)))
        if len(np.unique(ytr)) < 2:
            # a model that saw one class predicts it with certainty: it cannot rank
            if len(ytr):
                proba[:, ytr[0]] = 1.0
            return Predictions("classification", yte, proba, rows, None, xte, single_class=True)
        clf = HistGradientBoostingClassifier(
            max_iter=200, categorical_features=cat_arg, random_state=seed
        )
        clf.fit(xtr, ytr)
        proba[:, clf.classes_] = clf.predict_proba(xte)
        return Predictions("classification", yte, proba, rows, clf, xte)
    reg = HistGradientBoostingRegressor(
        max_iter=200, categorical_features=cat_arg, random_state=seed
    )
    reg.fit(xtr, pd.to_numeric(train[target]).to_numpy(float))
    y = pd.to_numeric(test[target]).to_numpy(float)
    return Predictions("regression", y, reg.predict(xte), rows, reg, xte)


def score(p: Predictions, name: str, idx: np.ndarray | None = None) -> float:
    """Score ``name`` (``auc``, ``f1``, ``ece`` or ``r2``) on all rows or rows ``idx``."""
    y, pred = (p.y, p.pred) if idx is None else (p.y[idx], p.pred[idx])
    if name == "r2":
        return float(r2_score(y, pred)) if len(y) > 1 else float("nan")
    if name == "f1":
        return float(f1_score(y, pred.argmax(1), average="macro", zero_division=0))
    if name == "ece":
        conf = pred.max(1)
        hit = (pred.argmax(1) == y).astype(float)
        bins = np.minimum((conf * 10).astype(int), 9)
        return float(
            sum(
                abs(hit[bins == b].mean() - conf[bins == b].mean()) * np.mean(bins == b)
                for b in np.unique(bins)
            )
        )
    present = np.unique(y)
    if len(present) < 2:
        return float("nan")
    if pred.shape[1] == 2:
        return float(roc_auc_score(y, pred[:, 1]))
    sub = pred[:, present]
    sub = sub / np.clip(sub.sum(1, keepdims=True), 1e-12, None)
    remap = np.searchsorted(present, y)
    if len(present) == 2:
        return float(roc_auc_score(remap, sub[:, 1]))
    return float(roc_auc_score(remap, sub, multi_class="ovr", average="macro"))


def bootstrap(
    p: Predictions, name: str, *, seed: int, idx: np.ndarray | None = None
) -> tuple[float, float] | None:
    """95% bootstrap interval of ``score`` over the test rows (or over the rows ``idx``)."""
    rng = np.random.default_rng(seed)
    rows = np.arange(len(p.y)) if idx is None else np.asarray(idx)
    vals = []
    for _ in range(_N_BOOT):
        v = score(p, name, rng.choice(rows, len(rows)))
        if np.isfinite(v):
            vals.append(v)
    if len(vals) < _N_BOOT // 2:
        return None
    lo, hi = np.percentile(vals, [2.5, 97.5])
    return float(lo), float(hi)


def compute(
    *,
    real: pd.DataFrame,
    synthetic: pd.DataFrame,
    holdout: pd.DataFrame | None = None,
    schema: Schema,
    seed: int = 0,
    cache: dict[Any, Any] | None = None,
) -> list[MetricRecord]:
    """TSTR scores with train-on-real as the reference."""
    why = why_not(schema, real, holdout)
    if why is not None:
        return [not_applicable("tstr", "utility", why)]
    assert holdout is not None
    syn = fit_predict(synthetic, holdout, schema, seed=seed, cache=cache)
    ref = fit_predict(real, holdout, schema, seed=seed, cache=cache)
    names = ["auc", "f1", "ece"] if syn.task == "classification" else ["r2"]
    out = []
    for name in names:
        value = score(syn, name)
        if name == "auc" and syn.single_class:
            value = 0.5
        reference = score(ref, name)
        out.append(
            MetricRecord(
                name=f"tstr_{name}",
                dimension="utility",
                value=value,
                direction="lower" if name == "ece" else "higher",
                interval=None if name == "ece" else bootstrap(syn, name, seed=seed),
                reference=reference,
                details={
                    "target": schema.target,
                    "train_on_real": reference,
                    "gap": reference - value,
                    "test_rows": int(len(syn.y)),
                    "test_rows_left_out": int(len(holdout) - len(syn.y)),
                },
                message="the synthetic target has a single class" if syn.single_class else None,
            )
        )
    return out
