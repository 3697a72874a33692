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
    from threadpoolctl import threadpool_limits

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
    with threadpool_limits(1):  # several threads spin-wait for minutes on a busy machine
        pred = cross_val_predict(clf, x, y, cv=folds, method="predict_proba")[:, 1]
    direct = roc_auc_score(y, pred)
    assert 0.6 < direct and abs(rec.value - direct) < 0.05


def test_bootstrap_aucs_equal_roc_auc_score_on_each_resample():
    """The counting form of the bootstrap AUC against scikit-learn on the same resampled rows,
    with heavy ties (an integer column as the score): tolerance 1e-12."""
    from sklearn.metrics import roc_auc_score

    from healthsynth.evaluate.fidelity.detection import bootstrap_aucs

    df = real("MASS/Pima.tr")
    y = (df["type"] == "Yes").to_numpy(float)
    for col in ("npreg", "glu", "bmi"):
        scores = df[col].to_numpy(float)
        fast = bootstrap_aucs(y, scores, np.random.default_rng(3), 50)
        rng = np.random.default_rng(3)
        slow = []
        for _ in range(50):
            idx = rng.integers(0, len(y), len(y))
            slow.append(roc_auc_score(y[idx], scores[idx]))
        assert len(fast) == 50 and np.allclose(fast, slow, rtol=0, atol=1e-12)


def test_classifier_runs_on_one_openmp_thread(monkeypatch):
    """On a shared machine, OpenMP threads spin-waiting on each other made one fit 100x slower:
    every fit and prediction must run under a one-thread limit."""
    from sklearn.ensemble import HistGradientBoostingClassifier
    from threadpoolctl import threadpool_info

    from healthsynth.evaluate.fidelity import detection

    seen = []

    class Recording(HistGradientBoostingClassifier):
        def fit(self, x, y, sample_weight=None):
            seen.append(_one_openmp_thread(threadpool_info()))
            return super().fit(x, y, sample_weight)

    monkeypatch.setattr(detection, "HistGradientBoostingClassifier", Recording)
    df = real("MASS/Pima.tr")
    schema = infer_schema(df)
    train, hold = train_holdout_split(df, holdout=0.5, seed=0)
    (rec,) = detection.compute(real=train, synthetic=hold, holdout=hold, schema=schema)
    assert len(seen) == 10 and all(seen)
    assert rec.reference == rec.value  # the holdout is the synthetic table here


def _one_openmp_thread(info: list[dict]) -> bool:
    """Every OpenMP runtime loaded (scikit-learn's, and torch's once it is imported) at 1 thread."""
    return all(i["num_threads"] == 1 for i in info if i["user_api"] == "openmp")
