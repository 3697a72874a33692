from __future__ import annotations

import numpy as np

from healthsynth.data import infer_schema, train_holdout_split
from healthsynth.evaluate.utility.tstr import compute
from tests.helpers import real


def test_real_data_matches_reference_and_label_noise_hurts():
    df = real("MASS/biopsy").drop(columns="ID")
    schema = infer_schema(df, target="class")
    train, hold = train_holdout_split(df, holdout=0.3, seed=0)
    auc, f1, ece = compute(real=train, synthetic=train, holdout=hold, schema=schema)
    assert [r.name for r in (auc, f1, ece)] == ["tstr_auc", "tstr_f1", "tstr_ece"]
    assert auc.value == auc.reference and auc.value > 0.95
    assert auc.interval[0] <= auc.value <= auc.interval[1]
    assert f1.value > 0.9 and ece.value < 0.1 and ece.direction == "lower"
    rng = np.random.default_rng(0)
    noisy = train.assign(**{"class": rng.permutation(train["class"].to_numpy())})
    bad = compute(real=train, synthetic=noisy, holdout=hold, schema=schema)[0]
    assert bad.value < 0.7 and bad.details["gap"] > 0.25


def test_agrees_with_scikit_learn_directly():
    """Cross-check: the same model fitted by hand gives the same AUC (tolerance 1e-9)."""
    from sklearn.ensemble import HistGradientBoostingClassifier
    from sklearn.metrics import roc_auc_score

    df = real("MASS/biopsy").drop(columns="ID")
    schema = infer_schema(df, target="class")
    train, hold = train_holdout_split(df, holdout=0.3, seed=1)
    syn = train.sample(frac=1.0, replace=True, random_state=3)
    rec = compute(real=train, synthetic=syn, holdout=hold, schema=schema)[0]
    cols = [c for c in df.columns if c != "class"]
    clf = HistGradientBoostingClassifier(max_iter=200, random_state=0)
    clf.fit(syn[cols].to_numpy(float), (syn["class"] == "malignant").to_numpy())
    p = clf.predict_proba(hold[cols].to_numpy(float))[:, 1]
    direct = roc_auc_score((hold["class"] == "malignant").to_numpy(), p)
    assert abs(rec.value - direct) < 1e-9


def test_regression_target_and_single_class_synthetic():
    nhefs = real("causaldata/nhefs")[["wt82", "wt71", "age", "sex", "smokeintensity", "ht"]]
    schema = infer_schema(nhefs, target="wt82")  # weight in 1982, from weight in 1971 and more
    train, hold = train_holdout_split(nhefs, holdout=0.3, seed=0)
    (r2,) = compute(real=train, synthetic=train, holdout=hold, schema=schema)
    assert r2.name == "tstr_r2" and r2.value == r2.reference and 0.5 < r2.value < 1
    df = real("MASS/Pima.tr")
    train, hold = train_holdout_split(df, holdout=0.3, seed=0)
    schema = infer_schema(df, target="type")
    one = train[train["type"] == "No"]
    auc = compute(real=train, synthetic=one, holdout=hold, schema=schema)[0]
    assert auc.value == 0.5 and "single class" in auc.message


def test_one_class_real_target_is_not_applicable():
    df = real("MASS/Pima.tr")
    df = df[df["type"] == "No"]
    schema = infer_schema(df, target="type")
    (rec,) = compute(real=df, synthetic=df, holdout=df, schema=schema)
    assert rec.status == "not_applicable" and "single class" in rec.message


def test_not_applicable_without_target():
    df = real("MASS/Pima.tr")
    (rec,) = compute(real=df, synthetic=df, holdout=df, schema=infer_schema(df))
    assert rec.status == "not_applicable" and "no target" in rec.message
