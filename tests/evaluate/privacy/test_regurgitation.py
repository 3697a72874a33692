from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import pairwise_distances

from healthsynth.data import infer_schema
from healthsynth.data._distance import RowEncoder
from healthsynth.errors import DataError
from healthsynth.evaluate import evaluate
from healthsynth.evaluate.privacy.regurgitation import compute
from tests.evaluate.privacy._data import awkward, three_way
from tests.helpers import real


@pytest.fixture(scope="module")
def pima():
    """Pima.tr (200 women) as training rows, the disjoint Pima.te (332) as holdout."""
    train, hold = real("MASS/Pima.tr"), real("MASS/Pima.te")
    return train, hold, infer_schema(train)


def run(train, syn, hold, schema, **kw):
    return {
        r.name: r for r in compute(real=train, synthetic=syn, holdout=hold, schema=schema, **kw)
    }


def test_fresh_real_rows_score_the_reference(pima):
    train, hold, schema = pima
    recs = run(train, hold, hold, schema)
    assert set(recs) == {"exact_copy_share", "near_copy_share"}
    assert recs["exact_copy_share"].value == 0.0 == recs["exact_copy_share"].reference
    near = recs["near_copy_share"]
    # τ is the holdout's 5th percentile, so about 5% of the holdout (17 of 332) is "near"
    assert near.value == near.reference == pytest.approx(17 / 332)
    assert near.details["tau"] > 0 and "holdout" in near.details["tau_source"]
    assert near.interval[0] < 0.05 < near.interval[1]
    assert all(r.direction == "lower" and r.status == "ok" for r in recs.values())


def test_disjoint_real_sample_is_near_about_five_percent():
    train, hold, third = three_way("causaldata/nhefs", drop=("seqn",))
    schema = infer_schema(train)
    recs = run(train, third, hold, schema)
    near = recs["near_copy_share"]
    assert abs(near.reference - 0.05) < 0.005
    # 543 fresh rows: binomial noise alone has a standard deviation of about 0.01
    assert 0.02 < near.value < 0.09
    assert recs["exact_copy_share"].value == 0.0


def test_copies_of_training_rows(pima):
    train, hold, schema = pima
    copies = train.sample(300, replace=True, random_state=1)
    recs = run(train, copies, hold, schema)
    assert recs["exact_copy_share"].value == 1.0
    assert recs["near_copy_share"].value == 1.0
    assert recs["exact_copy_share"].details["count"] == 300


def test_half_copies(pima):
    train, hold, schema = pima
    syn = pd.concat([train.iloc[:100], hold.iloc[:100]], ignore_index=True)
    recs = run(train, syn, hold, schema)
    assert recs["exact_copy_share"].value == 0.5
    # the copies plus the ~5% of the fresh half that sit within τ
    assert 0.5 < recs["near_copy_share"].value < 0.56


def test_jittered_copies_are_near_but_not_exact(pima):
    train, hold, schema = pima
    rng = np.random.default_rng(0)
    jittered = train.assign(
        bmi=train["bmi"] + rng.normal(0, 0.05, len(train)),
        ped=train["ped"] + rng.normal(0, 0.005, len(train)),
    )
    recs = run(train, jittered, hold, schema)
    assert recs["exact_copy_share"].value == 0.0
    assert recs["near_copy_share"].value == 1.0


def test_tau_zero_when_the_holdout_repeats_training_rows(pima):
    """When 5% or more of the holdout equals training rows, τ is 0 and near means exact."""
    train, hold, schema = pima
    leaky = pd.concat([hold, train.iloc[:30]], ignore_index=True)  # 30 of 362 rows are copies
    recs = run(train, train.iloc[:50], leaky, schema)
    near = recs["near_copy_share"]
    assert near.details["tau"] == 0.0 and "τ is 0" in near.message
    assert near.value == 1.0  # "at or below τ": an exact copy is a near copy
    assert recs["exact_copy_share"].reference == pytest.approx(30 / 362)
    assert near.reference == pytest.approx(30 / 362)


def test_a_changed_category_is_not_an_exact_copy(pima):
    train, hold, schema = pima
    flipped = train.assign(type=train["type"].map({"Yes": "No", "No": "Yes"}))
    recs = run(train, flipped, hold, schema)
    assert recs["exact_copy_share"].value == 0.0


def test_examples_are_compared_on_their_own(pima):
    train, hold, schema = pima
    examples = train.iloc[:20]
    syn = pd.concat(
        [examples.iloc[:10], train.iloc[100:110], hold.iloc[:20]], ignore_index=True
    )  # 10 example copies, 10 copies of other training rows, 20 fresh rows
    recs = run(train, syn, hold, schema, examples=examples)
    assert recs["exact_copy_share"].value == 0.5
    ex_exact, ex_near = recs["example_exact_copy_share"], recs["example_near_copy_share"]
    assert ex_exact.value == 0.25
    assert ex_exact.details["n_examples"] == 20
    assert ex_exact.details["n_examples_not_in_training"] == 0 and ex_exact.message is None
    # same τ as against all training rows; fresh rows are rarely near one of only 20 examples
    assert ex_near.details["tau"] == recs["near_copy_share"].details["tau"]
    assert 0.25 <= ex_near.value < recs["near_copy_share"].value
    assert ex_near.reference < recs["near_copy_share"].reference
    assert ex_exact.reference == 0.0


def test_example_shares_agree_with_brute_force(pima):
    train, hold, schema = pima
    examples = train.iloc[50:90]
    rng = np.random.default_rng(3)
    syn = pd.concat([train.sample(60, random_state=2), hold.iloc[:140]], ignore_index=True)
    syn["glu"] = syn["glu"] + rng.integers(0, 2, len(syn))  # some copies stay exact
    recs = run(train, syn, hold, schema, examples=examples)
    enc = RowEncoder(schema).fit(train)
    sx, rx, hx, ex = (enc.transform(d) for d in (syn, train, hold, examples))
    d_syn = pairwise_distances(sx, rx, metric="manhattan").min(axis=1)
    d_hold = pairwise_distances(hx, rx, metric="manhattan").min(axis=1)
    tau = np.quantile(d_hold, 0.05)
    assert recs["near_copy_share"].details["tau"] == pytest.approx(tau, abs=1e-12)
    assert recs["near_copy_share"].value == np.mean(d_syn <= tau)
    d_ex = pairwise_distances(sx, ex, metric="manhattan").min(axis=1)
    assert recs["example_near_copy_share"].value == np.mean(d_ex <= tau)
    d_hold_ex = pairwise_distances(hx, ex, metric="manhattan").min(axis=1)
    assert recs["example_near_copy_share"].reference == np.mean(d_hold_ex <= tau)
    merged = syn.merge(train.drop_duplicates(), how="left", indicator=True)
    assert recs["exact_copy_share"].value == np.mean(merged["_merge"] == "both")


def test_examples_that_are_not_training_rows_are_counted(pima):
    train, hold, schema = pima
    recs = run(train, hold, hold, schema, examples=pd.concat([train.iloc[:5], hold.iloc[:3]]))
    rec = recs["example_exact_copy_share"]
    assert rec.details["n_examples_not_in_training"] == 3
    assert "3 of the 8 example rows are not training rows" in rec.message
    # the holdout rows that were shown as examples are copies of examples
    assert rec.value == pytest.approx(3 / len(hold))


def test_examples_without_rows_or_columns(pima):
    train, hold, schema = pima
    recs = run(train, hold, hold, schema, examples=train.head(0))
    assert recs["example_near_copy_share"].status == "not_applicable"
    assert recs["near_copy_share"].status == "ok"
    with pytest.raises(DataError, match="lack column\\(s\\) 'bmi'"):
        compute(
            real=train,
            synthetic=hold,
            holdout=hold,
            schema=schema,
            examples=train.drop(columns="bmi"),
        )


def test_without_holdout_tau_comes_from_leave_one_out_distances(pima):
    train, hold, schema = pima
    recs = {r.name: r for r in compute(real=train, synthetic=hold, schema=schema)}
    near = recs["near_copy_share"]
    assert near.reference is None and recs["exact_copy_share"].reference is None
    assert "leave-one-out" in near.details["tau_source"] and "no holdout" in near.message
    enc = RowEncoder(schema).fit(train)
    rx = enc.transform(train)
    d = pairwise_distances(rx, rx, metric="manhattan")
    np.fill_diagonal(d, np.inf)
    assert near.details["tau"] == pytest.approx(np.quantile(d.min(axis=1), 0.05), abs=1e-12)
    assert 0.0 < near.value < 0.15


def test_large_tables_are_subsampled(pima):
    train, hold, schema = pima
    copies = train.sample(400, replace=True, random_state=0)
    recs = run(train, copies, hold, schema, max_rows=50)
    rec = recs["near_copy_share"]
    assert rec.details["n_synthetic"] == 50 and rec.details["n_synthetic_total"] == 400
    assert rec.details["n_holdout"] == 50 and rec.details["n_holdout_total"] == len(hold)
    assert recs["exact_copy_share"].value == 1.0
    again = run(train, copies, hold, schema, max_rows=50)
    assert again["near_copy_share"].details["tau"] == rec.details["tau"]  # seeded


def test_missing_values_and_datetimes():
    train, hold, third = three_way("survival/pbc")
    train, schema = awkward(train, infer_schema(train))
    hold, _ = awkward(hold, schema)
    third, _ = awkward(third, schema)
    assert train["chol"].isna().any()
    # a copy with its missing values intact is an exact copy: missing equals missing
    syn = pd.concat([train.iloc[:40], third.iloc[:40]], ignore_index=True)
    recs = run(train, syn, hold, schema, examples=train.iloc[:10])
    assert recs["exact_copy_share"].value == 0.5
    assert recs["example_exact_copy_share"].value == 10 / 80
    # filling a missing value makes a row differ
    filled = train.iloc[:40].assign(chol=train["chol"].iloc[:40].fillna(250.0))
    n_missing = int(train["chol"].iloc[:40].isna().sum())
    assert n_missing > 0
    recs = run(train, filled, hold, schema)
    assert recs["exact_copy_share"].value == 1 - n_missing / 40


def test_inputs_are_not_mutated(pima):
    train, hold, schema = pima
    examples = train.iloc[:15]
    syn = pd.concat([train.iloc[:30], hold.iloc[:30]], ignore_index=True)
    before = [d.copy(deep=True) for d in (train, syn, hold, examples)]
    run(train, syn, hold, schema, examples=examples, max_rows=20)
    for a, b in zip(before, (train, syn, hold, examples), strict=True):
        pd.testing.assert_frame_equal(a, b)


def test_runs_through_evaluate_with_examples(pima):
    train, hold, _ = pima
    examples = train.iloc[:20]
    syn = pd.concat([examples.iloc[:10], hold.iloc[:30]], ignore_index=True)
    res = evaluate(
        real=train,
        synthetic=syn,
        holdout=hold,
        examples=examples,
        metrics=["regurgitation"],
        sources={"examples": "prompts.csv"},
    )
    by = {r["name"]: r for r in res["records"]}
    assert by["exact_copy_share"]["value"] == 0.25
    assert by["example_exact_copy_share"]["value"] == 0.25
    assert by["example_near_copy_share"]["details"]["n_examples"] == 20
    assert res["meta"]["examples"] == {"rows": 20, "columns": 8, "source": "prompts.csv"}
    # without examples there are no example records, and no not-applicable noise either
    res = evaluate(real=train, synthetic=syn, holdout=hold, metrics=["regurgitation"])
    assert sorted(r["name"] for r in res["records"]) == ["exact_copy_share", "near_copy_share"]
    assert res["meta"]["examples"] is None
    with pytest.raises(DataError, match="prompt examples lack column"):
        evaluate(
            real=train,
            synthetic=syn,
            examples=examples.drop(columns="age"),
            metrics=["regurgitation"],
        )
