from __future__ import annotations

import pandas as pd

from healthsynth.data import infer_schema, train_holdout_split
from healthsynth.evaluate.diversity import coverage, duplicates, rare_categories
from tests.helpers import real


def test_coverage_known_answers():
    df = real("survival/colon").drop(columns="id")
    schema = infer_schema(df)
    train, hold = train_holdout_split(df, holdout=0.3, seed=0)
    (full,) = coverage.compute(real=train, synthetic=train, holdout=hold, schema=schema)
    assert full.value == 1.0 and 0.8 < full.reference <= 1.0
    # one patient repeated covers one category per column and one bin per number
    one = pd.concat([train.iloc[[0]]] * 50, ignore_index=True)
    (low,) = coverage.compute(real=train, synthetic=one, schema=schema)
    assert low.value < 0.45  # binary columns alone give 0.5 each
    assert low.details["per_column"]["etype"] == 0.5
    assert low.details["per_column"]["sex"] == 0.5


def test_duplicate_rate_known_answers():
    df = real("MASS/Pima.tr")
    schema = infer_schema(df)
    (none,) = duplicates.compute(real=df, synthetic=df, schema=schema)
    assert none.value == 0.0
    doubled = pd.concat([df, df], ignore_index=True)
    (half,) = duplicates.compute(real=df, synthetic=doubled, schema=schema)
    assert half.value == 0.5 and half.reference == 0.0


def test_rare_category_retention():
    df = real("survival/colon").drop(columns="id")
    schema = infer_schema(df, kinds={"differ": "categorical", "extent": "categorical"})
    (same,) = rare_categories.compute(real=df, synthetic=df, schema=schema)
    assert same.value == 1.0
    rare = set(same.details["per_category"])
    assert "extent=1" in rare  # 2% of colon tumours only invade the submucosa
    common = df[df["extent"].astype(str) != "1"]
    (lost,) = rare_categories.compute(real=df, synthetic=common, schema=schema)
    assert lost.details["per_category"]["extent=1"] == 0.0 and lost.value < 1.0


def test_rare_categories_not_applicable_without_categories():
    df = real("MASS/Pima.tr").drop(columns="type")
    (rec,) = rare_categories.compute(real=df, synthetic=df, schema=infer_schema(df))
    assert rec.status == "not_applicable"
