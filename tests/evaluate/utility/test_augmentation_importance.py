from __future__ import annotations

import numpy as np

from healthsynth.data import infer_schema, train_holdout_split
from healthsynth.evaluate.utility import augmentation, importance
from tests.helpers import real


def _biopsy():
    df = real("MASS/biopsy").drop(columns="ID")
    schema = infer_schema(df, target="class")
    train, hold = train_holdout_split(df, holdout=0.3, seed=0)
    return train, hold, schema


def test_augmentation_with_real_rows_is_no_worse_and_noise_hurts():
    train, hold, schema = _biopsy()
    (rec,) = augmentation.compute(real=train, synthetic=train, holdout=hold, schema=schema)
    assert rec.name == "augmentation_auc" and rec.reference > 0.95
    assert abs(rec.details["lift"]) < 0.02
    rng = np.random.default_rng(0)
    noise = train.assign(**{"class": rng.permutation(train["class"].to_numpy())})
    (bad,) = augmentation.compute(real=train, synthetic=noise, holdout=hold, schema=schema)
    assert bad.details["lift"] < rec.details["lift"]


def test_importance_agreement_known_answers():
    train, hold, schema = _biopsy()
    (same,) = importance.compute(real=train, synthetic=train, holdout=hold, schema=schema)
    assert same.value == 1.0  # the same rows train the same model
    # shuffling every predictor independently destroys what the model learns from each
    rng = np.random.default_rng(0)
    shuffled = train.copy()
    for c in train.columns:
        if c != "class":
            shuffled[c] = rng.permutation(train[c].to_numpy())
    (bad,) = importance.compute(real=train, synthetic=shuffled, holdout=hold, schema=schema)
    assert bad.value < 0.6
    assert len(same.details["columns"]) == len(same.details["real"]) == 9


def test_not_applicable_without_holdout():
    train, _, schema = _biopsy()
    (rec,) = importance.compute(real=train, synthetic=train, holdout=None, schema=schema)
    assert rec.status == "not_applicable" and "holdout" in rec.message


def test_importance_runs_on_one_openmp_thread(monkeypatch):
    """Shuffled-column predictions under several OpenMP threads spin-waited for 20 s on a loaded
    machine (151 rows): the models are fitted and explained under a one-thread limit."""
    from sklearn.inspection import permutation_importance
    from threadpoolctl import threadpool_info

    seen = []

    def recording(*args, **kwargs):
        seen.append(_one_openmp_thread(threadpool_info()))
        return permutation_importance(*args, **kwargs)

    monkeypatch.setattr(importance, "permutation_importance", recording)
    train, hold, schema = _biopsy()
    (rec,) = importance.compute(real=train, synthetic=train, holdout=hold, schema=schema)
    assert rec.value == 1.0 and len(seen) == 2 and all(seen)


def _one_openmp_thread(info: list[dict]) -> bool:
    """Every OpenMP runtime loaded (scikit-learn's, and torch's once it is imported) at 1 thread."""
    return all(i["num_threads"] == 1 for i in info if i["user_api"] == "openmp")
