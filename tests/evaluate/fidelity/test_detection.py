from __future__ import annotations

import numpy as np

from healthsynth.data import infer_schema, train_holdout_split
from healthsynth.evaluate.fidelity.detection import compute
from tests.helpers import real


def test_holdout_is_undetectable_and_shuffled_is_detected():
    df = real("survival/colon")
    schema = infer_schema(df)
    train, hold = train_holdout_split(df, holdout=0.5, seed=0)
    (rec,) = compute(real=train, synthetic=hold, holdout=hold, schema=schema)
    assert abs(rec.value - 0.5) < 0.08 and rec.interval[0] < rec.value < rec.interval[1]
    rng = np.random.default_rng(1)
    fake = hold.apply(lambda s: s.sample(frac=1, random_state=int(rng.integers(1e6))).to_numpy())
    (bad,) = compute(real=train, synthetic=fake, schema=schema)
    assert bad.value > 0.75


def test_agrees_with_scikit_learn_cross_val_predict():
    """Cross-check against an independent computation: tolerance 0.05 AUC (fold assignment and
    row order differ between the two, so the out-of-fold scores are not identical)."""
    from sklearn.ensemble import HistGradientBoostingClassifier
    from sklearn.metrics import roc_auc_score
    from sklearn.model_selection import StratifiedKFold, cross_val_predict

    df = real("MASS/Pima.tr").drop(columns="type")
    schema = infer_schema(df)
    train, hold = train_holdout_split(df, holdout=0.5, seed=2)
    # a distorted copy: glucose shifted, so the classifier has something to find
    syn = hold.assign(glu=hold["glu"] + 30)
    (rec,) = compute(real=train, synthetic=syn, schema=schema)
    x = np.vstack([train.to_numpy(float), syn.to_numpy(float)])
    y = np.r_[np.zeros(len(train)), np.ones(len(syn))]
    clf = HistGradientBoostingClassifier(max_iter=200, early_stopping=False, random_state=0)
    folds = StratifiedKFold(5, shuffle=True, random_state=0)
    direct = roc_auc_score(y, cross_val_predict(clf, x, y, cv=folds, method="predict_proba")[:, 1])
    assert 0.6 < direct and abs(rec.value - direct) < 0.05
