from __future__ import annotations

import sys

import pytest

from healthsynth.data import infer_schema
from healthsynth.evaluate import run_metric
from healthsynth.evaluate.privacy.anonymeter_risks import compute
from tests.evaluate.privacy._data import awkward, three_way

pytest.importorskip("anonymeter")

N_ATTACKS = 100  # the tests keep Anonymeter's brute-force searches small


@pytest.fixture(scope="module")
def pbc():
    train, hold, third = three_way("survival/pbc")
    schema = infer_schema(train).with_roles(sensitive=["sex"], target="status")
    return train, hold, third, schema


@pytest.fixture(scope="module")
def risks(pbc):
    train, hold, third, schema = pbc
    copies = compute(real=train, synthetic=train, holdout=hold, schema=schema, n_attacks=N_ATTACKS)
    fresh = compute(real=train, synthetic=third, holdout=hold, schema=schema, n_attacks=N_ATTACKS)
    return {(r.name, r.subgroup): r for r in copies}, {(r.name, r.subgroup): r for r in fresh}


def test_records_and_their_fields(risks):
    copies, _ = risks
    assert set(copies) == {
        ("singling_out_risk", None),
        ("linkability_risk", None),
        ("inference_risk", "sex"),
    }
    for rec in copies.values():
        assert rec.status == "ok" and rec.direction == "lower" and rec.dimension == "privacy"
        assert rec.interval[0] <= rec.value <= rec.interval[1]
        for key in ("attack_rate", "baseline_rate", "control_rate", "n_attacks"):
            assert key in rec.details
        assert rec.details["n_attacks"] == N_ATTACKS


def test_copies_are_riskier_than_a_disjoint_real_sample(risks):
    copies, fresh = risks
    for key in (("singling_out_risk", None), ("linkability_risk", None)):
        assert copies[key].value > fresh[key].value + 0.3, key
    assert copies[("linkability_risk", None)].value > 0.8


def test_the_target_is_the_secret_when_nothing_is_sensitive(pbc):
    train, hold, third, _ = pbc
    schema = infer_schema(train, target="status")
    recs = compute(real=train, synthetic=third, holdout=hold, schema=schema, n_attacks=50)
    assert [r.subgroup for r in recs if r.name == "inference_risk"] == ["status"]


def test_not_applicable_without_holdout(pbc):
    train, _, third, schema = pbc
    recs = run_metric("anonymeter", real=train, synthetic=third, schema=schema)
    assert [r.status for r in recs] == ["not_applicable"] * 3
    assert all("holdout" in r.message for r in recs)


def test_not_applicable_without_the_package(pbc, monkeypatch):
    monkeypatch.setitem(sys.modules, "anonymeter.evaluators", None)  # import now fails
    train, hold, third, schema = pbc
    recs = compute(real=train, synthetic=third, holdout=hold, schema=schema)
    assert [r.name for r in recs] == ["singling_out_risk", "linkability_risk", "inference_risk"]
    for rec in recs:
        assert rec.status == "not_applicable"
        assert rec.message == "install the privacy extra: pip install 'healthsynth[privacy]'"


def test_missing_values_datetimes_and_a_single_synthetic_row(pbc):
    train, hold, third, schema = pbc
    train, schema = awkward(train, schema)
    hold, _ = awkward(hold, schema)
    third, _ = awkward(third, schema)
    recs = compute(real=train, synthetic=third.iloc[:1], holdout=hold, schema=schema, n_attacks=50)
    assert len(recs) == 3
    # a single synthetic row supports few attacks; each record is a number or says why not
    for rec in recs:
        assert rec.status in ("ok", "not_applicable")
        assert rec.status == "ok" or rec.message
