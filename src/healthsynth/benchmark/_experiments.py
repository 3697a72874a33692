"""The augmentation experiments: class imbalance and health equity.

Both train the same classifier as the utility metrics (scikit-learn's HistGradientBoosting) on
the real training rows plus extra rows, and score it on the real holdout:

* **class imbalance** — every class but the largest gets conditional samples (``conditions=
  {target: class}``) until all classes are as large as the largest; the scores are the minority
  class's recall, F1 and precision, the AUC and the balanced accuracy. The built-in methods are
  ``none`` (real rows only) and ``class-weights`` (balanced class weights, no new rows).
* **health equity** — the smallest subgroup of the first sensitive column gets conditional
  samples (``conditions={column: value}``) until it is as large as the largest subgroup; the
  scores are the AUC and F1 of every subgroup. The built-in methods are ``none`` and
  ``reweighting`` (every subgroup gets the same total weight, no new rows).

Gains over ``none`` (same dataset, size and seed) are computed when the results are summarised.
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np
import pandas as pd
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.metrics import (
    balanced_accuracy_score,
    f1_score,
    precision_score,
    recall_score,
    roc_auc_score,
)

from healthsynth.data import Schema
from healthsynth.errors import DataError, ParameterError
from healthsynth.evaluate._base import features

__all__ = ["augment_rows", "classify", "equity_groups", "experiment_records"]

#: a numeric sensitive column with at most this many distinct values is treated as coded groups
_MAX_LEVELS = 10


def _record(name: str, value: float | None, subgroup: str | None = None, **details: Any) -> dict:
    ok = value is not None and bool(np.isfinite(value))
    return {
        "name": name,
        "dimension": "utility",
        "value": float(value) if ok and value is not None else None,
        "direction": "higher",
        "subgroup": subgroup,
        "interval": None,
        "reference": None,
        "seconds": None,
        "details": details,
        "status": "ok" if ok else "not_applicable",
        "message": None if ok else "undefined on this holdout",
    }


def _classes(schema: Schema) -> list[Any]:
    target = schema.target
    if target is None:
        raise ParameterError("the augmentation experiments need a 'target' for every dataset")
    col = schema[target]
    if col.kind not in ("categorical", "boolean"):
        raise ParameterError(
            f"the augmentation experiments need a class target; '{target}' is {col.kind}"
        )
    return list(col.categories or [])


def classify(
    train: pd.DataFrame,
    test: pd.DataFrame,
    schema: Schema,
    *,
    seed: int,
    class_weight: str | None = None,
    sample_weight: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Fit the classifier on ``train``; return (test class codes, probabilities, test row mask)."""
    target = schema.target
    assert target is not None
    classes = _classes(schema)
    keep = train[target].isin(classes).to_numpy()
    train = train[keep]
    if sample_weight is not None:
        sample_weight = np.asarray(sample_weight, float)[keep]
    usable = test[target].isin(classes).to_numpy()
    test = test[usable]
    (xtr, xte), _, cat = features([train, test], schema, exclude=[target])
    empty = np.isnan(xtr).all(axis=0) if len(xtr) else np.zeros(xtr.shape[1], bool)
    xtr[:, empty] = 0.0
    xte[:, empty] = 0.0
    ytr = pd.Categorical(train[target], categories=classes).codes
    yte = pd.Categorical(test[target], categories=classes).codes
    proba = np.zeros((len(xte), len(classes)))
    if len(np.unique(ytr)) < 2:
        proba[:, ytr[0]] = 1.0
        return yte, proba, usable
    clf = HistGradientBoostingClassifier(
        max_iter=200,
        categorical_features=cat if cat.any() else None,
        class_weight=class_weight,
        random_state=seed,
    )
    clf.fit(xtr, ytr, sample_weight=sample_weight)
    proba[:, clf.classes_] = clf.predict_proba(xte)
    return yte, proba, usable


def _auc(y: np.ndarray, proba: np.ndarray) -> float | None:
    present = np.unique(y)
    if len(present) < 2:
        return None
    if proba.shape[1] == 2:
        return float(roc_auc_score(y, proba[:, 1]))
    p = proba[:, present]
    p = p / np.clip(p.sum(axis=1, keepdims=True), 1e-12, None)
    if len(present) == 2:  # a subgroup holding two of several classes: a binary AUC
        return float(roc_auc_score(y == present[1], p[:, 1]))
    return float(roc_auc_score(y, p, multi_class="ovr", average="macro", labels=present))


def _minority(train: pd.DataFrame, schema: Schema) -> tuple[Any, dict[Any, int]]:
    target = schema.target
    counts = train[target].value_counts()
    counts = {c: int(counts.get(c, 0)) for c in _classes(schema) if counts.get(c, 0) > 0}
    if len(counts) < 2:
        raise DataError(f"the training rows hold a single class of '{target}'")
    return min(counts, key=lambda c: counts[c]), counts


def equity_groups(train: pd.DataFrame, schema: Schema) -> tuple[str, dict[Any, int]]:
    """The first sensitive column and the size of each of its subgroups in ``train``."""
    if not schema.sensitive:
        raise ParameterError("the health-equity experiment needs a 'sensitive' column per dataset")
    col = schema[schema.sensitive[0]]
    s = train[col.name].dropna()
    if col.kind not in ("categorical", "boolean") and s.nunique() > _MAX_LEVELS:
        raise ParameterError(
            f"the health-equity experiment needs a sensitive column with groups; '{col.name}' "
            f"has {s.nunique()} distinct numbers: add a grouped copy of it to the data"
        )
    counts = s.value_counts()
    return col.name, {k: int(v) for k, v in counts.items()}


def augment_rows(
    experiment: str, train: pd.DataFrame, schema: Schema
) -> list[tuple[dict[str, Any], int]]:
    """What to add: a list of (conditions, row count)."""
    if experiment == "class-imbalance":
        _, counts = _minority(train, schema)
        target = str(schema.target)  # _minority has checked that there is one
        top = max(counts.values())
        return [({target: c}, top - k) for c, k in counts.items() if k < top]
    column, counts = equity_groups(train, schema)
    if len(counts) < 2:
        raise DataError(f"the training rows hold a single subgroup of '{column}'")
    small = min(counts, key=lambda g: counts[g])
    return [({column: small}, max(counts.values()) - counts[small])]


def _value(v: Any) -> Any:
    return v.item() if hasattr(v, "item") else v


def experiment_records(
    experiment: str,
    method: str,
    *,
    train: pd.DataFrame,
    holdout: pd.DataFrame,
    schema: Schema,
    seed: int,
    extra: pd.DataFrame | None,
) -> list[dict[str, Any]]:
    """Train the classifier for one method and score it on the holdout."""
    started = time.perf_counter()
    target = schema.target
    class_weight = "balanced" if method == "class-weights" else None
    weight = None
    data = train
    if method == "reweighting":
        column, counts = equity_groups(train, schema)
        g = train[column].map(lambda v: counts.get(v, 0)).to_numpy(float)
        total = float(sum(counts.values()))
        weight = np.where(g > 0, total / (len(counts) * np.maximum(g, 1)), 1.0)
    if extra is not None and len(extra):
        data = pd.concat([train, extra[train.columns]], ignore_index=True)
    y, proba, usable = classify(
        data, holdout, schema, seed=seed, class_weight=class_weight, sample_weight=weight
    )
    pred = proba.argmax(axis=1)
    recs: list[dict[str, Any]] = []
    added = 0 if extra is None else len(extra)
    if experiment == "class-imbalance":
        minority, counts = _minority(train, schema)
        k = _classes(schema).index(minority)
        label = f"{target}={_value(minority)}"
        pos_y, pos_p = (y == k).astype(int), (pred == k).astype(int)
        zero = {"zero_division": 0}
        recs += [
            _record("minority_recall", recall_score(pos_y, pos_p, **zero), label),
            _record("minority_f1", f1_score(pos_y, pos_p, **zero), label),
            _record("minority_precision", precision_score(pos_y, pos_p, **zero), label),
            _record("auc", _auc(y, proba), None),
            _record("balanced_accuracy", balanced_accuracy_score(y, pred), None),
        ]
    else:
        column, counts = equity_groups(train, schema)
        small = min(counts, key=lambda g: counts[g])
        groups = holdout[column][usable].to_numpy()
        recs += [
            _record("auc", _auc(y, proba), None),
            _record("macro_f1", f1_score(y, pred, average="macro", zero_division=0), None),
        ]
        for g in sorted(counts, key=lambda g: counts[g]):
            m = np.array([_value(v) == _value(g) or str(v) == str(g) for v in groups], bool)
            label = f"{column}={_value(g)}"
            n = int(m.sum())
            smallest = bool(g == small)
            if n < 5:
                recs.append(_record("subgroup_auc", None, label, holdout_rows=n))
                continue
            recs += [
                _record(
                    "subgroup_auc", _auc(y[m], proba[m]), label, holdout_rows=n, smallest=smallest
                ),
                _record(
                    "subgroup_f1",
                    f1_score(y[m], pred[m], average="macro", zero_division=0),
                    label,
                    holdout_rows=n,
                    smallest=smallest,
                ),
            ]
    took = round(time.perf_counter() - started, 3)
    for r in recs:
        r["seconds"] = took
        r["details"]["added_rows"] = added
    return recs
