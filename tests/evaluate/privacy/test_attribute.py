from __future__ import annotations

import numpy as np
import pytest

from healthsynth.data import infer_schema
from healthsynth.evaluate import run_metric
from healthsynth.evaluate.privacy.attribute import compute
from tests.evaluate.privacy._data import awkward, three_way


@pytest.fixture(scope="module")
def pbc():
    train, hold, third = three_way("survival/pbc")
    schema = infer_schema(train).with_roles(sensitive=["sex", "bili"])
    return train, hold, third, schema


def test_copies_reveal_every_training_rows_value(pbc):
    train, hold, _, schema = pbc
    recs = {
        r.subgroup: r for r in compute(real=train, synthetic=train, holdout=hold, schema=schema)
    }
    assert set(recs) == {"sex", "bili"}
    for col, rec in recs.items():
        assert rec.name == "attribute_inference" and rec.direction == "lower"
        assert rec.value == 1.0, col
        # people outside the training data are guessed less well: the gap is the membership risk
        assert rec.reference < 1.0
        assert rec.details["gap"] == pytest.approx(1.0 - rec.reference)
        assert 0.0 <= rec.details["baseline"] <= 1.0
    assert recs["sex"].details["score"] == "accuracy"
    assert recs["bili"].details["kind"] == "numeric"
    assert "sex" not in recs["sex"].details["quasi_identifiers"]


def test_a_disjoint_real_sample_gives_no_membership_gap(pbc):
    train, hold, third, schema = pbc
    recs = {
        r.subgroup: r for r in compute(real=train, synthetic=third, holdout=hold, schema=schema)
    }
    for col, rec in recs.items():
        assert abs(rec.value - rec.reference) < 0.08, col
        assert rec.interval[0] <= rec.value <= rec.interval[1]


def test_majority_class_baseline_is_the_synthetic_majority(pbc):
    train, hold, third, schema = pbc
    rec = next(
        r
        for r in compute(real=train, synthetic=third, holdout=hold, schema=schema)
        if r.subgroup == "sex"
    )
    majority = third["sex"].mode().iloc[0]
    assert rec.details["baseline"] == pytest.approx(float(np.mean(train["sex"] == majority)))


def test_not_applicable_without_a_sensitive_column(pbc):
    train, hold, third, _ = pbc
    recs = run_metric(
        "attribute_inference",
        real=train,
        synthetic=third,
        holdout=hold,
        schema=infer_schema(train),
    )
    assert len(recs) == 1 and recs[0].status == "not_applicable"
    assert "--sensitive" in recs[0].message


def test_without_holdout_the_value_stands_alone(pbc):
    train, _, third, schema = pbc
    recs = compute(real=train, synthetic=third, schema=schema)
    assert all(r.status == "ok" and r.reference is None for r in recs)
    assert all("holdout" in r.message for r in recs)


def test_missing_values_datetimes_and_a_single_synthetic_row(pbc):
    train, hold, third, schema = pbc
    train, schema = awkward(train, schema)
    hold, _ = awkward(hold, schema)
    third, _ = awkward(third, schema)
    schema = schema.with_roles(sensitive=["sex", "chol", "never_measured", "visit"])
    recs = {
        r.subgroup: r
        for r in compute(real=train, synthetic=third.iloc[:1], holdout=hold, schema=schema)
    }
    assert recs["never_measured"].status == "not_applicable"
    for col in ("sex", "chol", "visit"):
        assert recs[col].status == "ok" and 0.0 <= recs[col].value <= 1.0, col
