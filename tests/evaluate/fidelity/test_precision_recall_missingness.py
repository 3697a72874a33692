from __future__ import annotations

import numpy as np
import pandas as pd

from healthsynth.data import infer_schema, train_holdout_split
from healthsynth.evaluate.fidelity import missingness, precision_recall
from tests.helpers import real


def test_precision_recall_known_answers():
    df = real("survival/colon").drop(columns="id")
    schema = infer_schema(df)
    train, hold = train_holdout_split(df, holdout=0.5, seed=0)
    p, r = precision_recall.compute(real=train, synthetic=train, holdout=hold, schema=schema)
    assert p.value == r.value == 1.0 or (p.value > 0.97 and r.value > 0.97)
    assert p.reference > 0.85 and r.reference > 0.85
    # every synthetic row is the same typical row: precision stays, recall collapses
    one = pd.concat([train.iloc[[0]]] * len(train), ignore_index=True)
    p1, r1 = precision_recall.compute(real=train, synthetic=one, holdout=None, schema=schema)
    assert r1.value < 0.3
    assert len(p.details["curve"]) == len(p.details["levels"]) == 19


def test_missingness_pattern_distance_known_answers():
    df = real("survival/pbc")
    schema = infer_schema(df)
    (same,) = missingness.compute(real=df, synthetic=df, holdout=None, schema=schema)
    assert same.value == 0.0
    complete = df.dropna()
    (bad,) = missingness.compute(real=df, synthetic=complete, holdout=None, schema=schema)
    share_complete = float(df.notna().all(axis=1).mean())
    assert abs(bad.value - (1 - share_complete)) < 1e-12
    shares = missingness.pattern_shares(df, [c.name for c in schema.modelled])
    assert abs(shares.sum() - 1) < 1e-12 and shares.index[0] == "(complete)"


def test_missingness_without_missing_values_says_so():
    df = real("MASS/Pima.tr")
    (rec,) = missingness.compute(real=df, synthetic=df, schema=infer_schema(df))
    assert rec.value == 0.0 and "no value is missing" in rec.message
    assert np.isfinite(rec.value)
