from __future__ import annotations

import numpy as np

from healthsynth.data import infer_schema, train_holdout_split
from healthsynth.evaluate.utility.tstr import compute
from tests.helpers import real


def test_real_data_matches_reference_and_label_noise_hurts():
    df = real("MASS/biopsy").drop(columns="ID")
    schema = infer_schema(df, target="class")
    train, hold = train_holdout_split(df, holdout=0.3, seed=0)
    (rec,) = compute(real=train, synthetic=train, holdout=hold, schema=schema)
    assert rec.name == "tstr_auc" and rec.value == rec.reference and rec.value > 0.95
    rng = np.random.default_rng(0)
    noisy = train.assign(**{"class": rng.permutation(train["class"].to_numpy())})
    (bad,) = compute(real=train, synthetic=noisy, holdout=hold, schema=schema)
    assert bad.value < 0.7 and bad.details["gap"] > 0.25


def test_not_applicable_without_target():
    df = real("MASS/Pima.tr")
    (rec,) = compute(real=df, synthetic=df, holdout=df, schema=infer_schema(df))
    assert rec.status == "not_applicable" and "no target" in rec.message
