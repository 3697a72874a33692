from __future__ import annotations

import numpy as np
import pytest

from healthsynth.data import infer_schema
from healthsynth.evaluate import run_metric
from healthsynth.evaluate.privacy.membership import compute
from tests.evaluate.privacy._data import awkward, three_way

# Under no leak the AUC of 543 members vs 543 non-members has a standard error of about
# sqrt((n1 + n2 + 1) / (12 n1 n2)) = 0.018; the tolerance is four of those.
TOLERANCE = 0.07


@pytest.fixture(scope="module")
def nhefs():
    train, hold, third = three_way("causaldata/nhefs", drop=("seqn",))
    return train, hold, third, infer_schema(train)


def _by_attack(records):
    assert {r.name for r in records} == {"membership_inference_auc"}
    return {r.subgroup: r for r in records}


def test_copies_of_the_training_rows_leak_membership(nhefs):
    train, hold, _, schema = nhefs
    recs = _by_attack(compute(real=train, synthetic=train, holdout=hold, schema=schema))
    dist = recs["distance"]
    assert dist.value > 0.99
    assert dist.interval[0] > 0.95
    assert dist.details["tpr_at_fpr_0.01"] > 0.95
    assert dist.direction == "target" and dist.reference == 0.5
    # a copy makes the synthetic density peak at each member as well
    assert recs["density"].value > 0.5
    assert recs["density"].details["k"] == 5


def test_a_disjoint_real_sample_does_not(nhefs):
    train, hold, third, schema = nhefs
    recs = _by_attack(compute(real=train, synthetic=third, holdout=hold, schema=schema))
    for attack in ("distance", "density"):
        rec = recs[attack]
        assert abs(rec.value - 0.5) < TOLERANCE, attack
        assert rec.interval[0] < 0.5 < rec.interval[1] or abs(rec.value - 0.5) < 0.03
        assert rec.details["n_members"] == rec.details["n_non_members"] == len(hold)


def test_targets_and_synthetic_rows_are_capped(nhefs):
    train, hold, third, schema = nhefs
    recs = compute(
        real=train, synthetic=third, holdout=hold, schema=schema, max_targets=100, max_rows=200
    )
    d = recs[0].details
    assert (d["n_members"], d["n_non_members"], d["n_synthetic"]) == (100, 100, 200)
    assert d["n_synthetic_total"] == len(third)


def test_not_applicable_without_holdout(nhefs):
    train, _, third, schema = nhefs
    recs = run_metric("membership_inference", real=train, synthetic=third, schema=schema)
    assert [r.status for r in recs] == ["not_applicable", "not_applicable"]
    assert all("holdout" in r.message for r in recs)


def test_missing_values_datetimes_and_a_single_synthetic_row():
    train, hold, third = three_way("survival/pbc")
    train, schema = awkward(train, infer_schema(train))
    hold, _ = awkward(hold, schema)
    third, _ = awkward(third, schema)
    recs = compute(real=train, synthetic=third.iloc[:1], holdout=hold, schema=schema)
    assert [r.status for r in recs] == ["ok", "ok"]
    assert all(np.isfinite(r.value) for r in recs)
