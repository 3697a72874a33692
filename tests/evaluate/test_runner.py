from __future__ import annotations

import json

import numpy as np
import pytest

from healthsynth.data import infer_schema, train_holdout_split
from healthsynth.errors import DataError, ParameterError
from healthsynth.evaluate import DIMENSIONS, METRICS, evaluate, run_metric
from tests.helpers import real


@pytest.fixture(scope="module")
def colon_result():
    df = real("survival/colon", 600).drop(columns="id")
    train, rest = train_holdout_split(df, holdout=0.5, seed=0)
    hold, syn = train_holdout_split(rest, holdout=0.5, seed=1)
    return evaluate(
        real=train, synthetic=syn, holdout=hold, target="status", sensitive=["sex"], seed=0
    )


def test_every_metric_runs_and_the_result_is_plain_json(colon_result):
    res = colon_result
    text = json.dumps(res)
    assert json.loads(text) == res
    recs = res["records"]
    assert {r["dimension"] for r in recs} == set(DIMENSIONS)
    failed = [(r["name"], r["message"]) for r in recs if r["status"] == "failed"]
    assert not failed
    ok = {r["name"] for r in recs if r["status"] == "ok"}
    assert {
        "column_distance",
        "dependence_difference",
        "detection_auc",
        "alpha_precision",
        "beta_recall",
        "missingness_pattern_distance",
        "tstr_auc",
        "augmentation_auc",
        "importance_agreement",
        "dcr_median_ratio",
        "exact_copy_share",
        "near_copy_share",
        "membership_inference_auc",
        "attribute_inference",
        "coverage",
        "duplicate_rate",
        "subgroup_share",
        "subgroup_column_distance",
        "subgroup_tstr_auc",
    } <= ok
    for r in recs:
        assert set(r) >= {
            "name",
            "dimension",
            "subgroup",
            "value",
            "interval",
            "direction",
            "reference",
            "seconds",
        }
        assert r["seconds"] is not None
    # rules and cost records were not given: they say so instead of crashing
    by = {r["name"]: r for r in recs}
    assert by["rule_violations"]["status"] == "not_applicable"
    assert by["cost"]["status"] == "not_applicable"
    meta = res["meta"]
    assert meta["target"] == "status" and meta["sensitive"] == ["sex"]
    assert meta["real"]["rows"] == 300 and meta["versions"]["healthsynth"]


def test_fresh_real_rows_score_like_the_reference(colon_result):
    """A disjoint sample of real rows is "perfect synthetic data": values sit near references."""
    by = {r["name"]: r for r in colon_result["records"] if r["subgroup"] is None}
    assert by["detection_auc"]["value"] < 0.65
    assert abs(by["column_distance"]["value"] - by["column_distance"]["reference"]) < 0.05
    assert abs(by["tstr_auc"]["value"] - by["tstr_auc"]["reference"]) < 0.1
    assert 0.8 < by["dcr_median_ratio"]["value"] < 1.25


def test_unknown_metric_lists_valid_ones_and_failures_are_recorded():
    df = real("MASS/Pima.tr")
    with pytest.raises(ParameterError, match="known metrics: alpha|known metrics: anonymeter"):
        evaluate(real=df, synthetic=df, metrics=["nope"])
    (rec,) = run_metric(
        "column_distance",
        real=df,
        synthetic=df.drop(columns="age"),
        holdout=None,
        schema=infer_schema(df),
    )
    assert rec.status == "failed" and "age" in rec.message
    assert "tstr" in METRICS and "anonymeter" in METRICS


# -- bad input: each case evaluates what it can and says what it cannot -----------------------


def _pima():
    df = real("MASS/Pima.tr")
    return train_holdout_split(df, holdout=0.3, seed=0)


FAST = ["column_distance", "tstr", "subgroup_shares", "coverage", "dcr"]


def test_synthetic_with_missing_and_extra_columns():
    train, hold = _pima()
    syn = hold.drop(columns=["bmi"]).assign(extra=1)
    res = evaluate(real=train, synthetic=syn, holdout=hold, target="type", metrics=FAST)
    w = " ".join(res["meta"]["warnings"])
    assert "lacks column(s) 'bmi'" in w and "'extra'" in w
    cd = next(r for r in res["records"] if r["name"] == "column_distance")
    assert cd["status"] == "ok" and "bmi" not in cd["details"]["per_column"]


def test_different_dtypes_are_coerced_with_a_warning():
    train, hold = _pima()
    syn = hold.copy()
    syn["glu"] = syn["glu"].astype(str)
    syn.loc[syn.index[:3], "glu"] = "high"
    res = evaluate(real=train, synthetic=syn, holdout=hold, target="type", metrics=FAST)
    assert any("'glu' should be integer but 3" in w for w in res["meta"]["warnings"])
    assert all(r["status"] != "failed" for r in res["records"])


def test_all_missing_columns():
    train, hold = _pima()
    # missing in every real row: nothing to compare, so it is left out with a warning
    res = evaluate(
        real=train.assign(empty=np.nan),
        synthetic=hold.assign(empty=1.0),
        holdout=hold.assign(empty=np.nan),
        metrics=FAST,
    )
    assert any("'empty' is missing in every real row" in w for w in res["meta"]["warnings"])
    assert all(r["status"] != "failed" for r in res["records"])
    # missing in every synthetic row: evaluated, and as far from real as a column can be
    res = evaluate(real=train, synthetic=hold.assign(bmi=np.nan), holdout=hold, target="type")
    failed = [(r["name"], r["message"]) for r in res["records"] if r["status"] == "failed"]
    assert not failed
    cd = next(r for r in res["records"] if r["name"] == "column_distance")
    assert cd["details"]["per_column"]["bmi"] == 1.0


def test_one_synthetic_row():
    train, hold = _pima()
    res = evaluate(real=train, synthetic=hold.head(1), holdout=hold, target="type")
    failed = [(r["name"], r["message"]) for r in res["records"] if r["status"] == "failed"]
    assert not failed
    det = next(r for r in res["records"] if r["name"] == "detection_auc")
    assert det["status"] == "not_applicable" and "at least 20" in det["message"]


def test_target_with_one_class():
    train, hold = _pima()
    train = train[train["type"] == "No"]
    res = evaluate(real=train, synthetic=train, holdout=hold, target="type", metrics=["tstr"])
    (rec,) = res["records"]
    assert rec["status"] == "not_applicable" and "single class" in rec["message"]


def test_absent_sensitive_column_is_reported_not_fatal():
    train, hold = _pima()
    res = evaluate(
        real=train, synthetic=hold, holdout=hold, sensitive=["race"], metrics=["subgroup_shares"]
    )
    assert any("'race'" in w for w in res["meta"]["warnings"])
    (rec,) = res["records"]
    assert rec["status"] == "not_applicable" and "--sensitive" in rec["message"]


def test_no_holdout():
    train, hold = _pima()
    res = evaluate(real=train, synthetic=hold, target="type", metrics=FAST)
    by = {r["name"]: r for r in res["records"]}
    assert by["tstr"]["status"] == "not_applicable" and "holdout" in by["tstr"]["message"]
    assert by["column_distance"]["reference"] is None
    assert by["dcr_median"]["status"] == "ok"


def test_nothing_to_evaluate_is_one_clear_error():
    train, _ = _pima()
    with pytest.raises(DataError, match="share no column"):
        evaluate(real=train, synthetic=train.rename(columns=lambda c: c + "_x"))
    with pytest.raises(DataError, match="synthetic table has no rows"):
        evaluate(real=train, synthetic=train.head(0))


def test_categories_stored_with_another_dtype_are_the_same_categories():
    df = real("survival/pbc")
    train, hold = train_holdout_split(df, holdout=0.4, seed=0)
    syn = train.copy()
    for c in ["ascites", "hepato", "spiders"]:  # 0.0/1.0 with gaps in the real file
        syn[c] = syn[c].fillna(0).astype(int)
    syn.loc[syn.index[:3], "sex"] = "x"
    res = evaluate(real=train, synthetic=syn, holdout=hold, metrics=["column_distance"])
    per = res["records"][0]["details"]["per_column"]
    missing = float(train["ascites"].isna().mean())
    assert abs(per["ascites"] - missing) < 1e-12  # only the missing-rate gap remains
    assert any("'x'" in w and "not real categories" in w for w in res["meta"]["warnings"])


def test_holdout_class_unknown_to_real_data_is_left_out():
    train, hold = _pima()
    hold = hold.copy()
    hold.loc[hold.index[:5], "type"] = "Maybe"
    res = evaluate(real=train, synthetic=train, holdout=hold, target="type", metrics=["tstr"])
    auc = res["records"][0]
    assert auc["status"] == "ok" and auc["details"]["test_rows_left_out"] == 5


def test_copies_of_training_rows_are_not_better_than_real():
    """Resampled training rows fool an unfolded detection AUC into < 0.5; folded, they don't."""
    train, hold = _pima()
    copies = train.sample(frac=1, replace=True, random_state=2)
    res = evaluate(real=train, synthetic=copies, holdout=hold, metrics=["detection_auc"])
    (rec,) = res["records"]
    assert rec["details"]["raw_auc"] < 0.45 and rec["value"] > 0.55
    assert rec["value"] > rec["reference"]


def test_a_column_that_alone_gives_the_target_is_named():
    # MASS/birthwt: `low` is birth weight under 2,500 g; Pima.tr's glucose does not give `type`
    df = real("MASS/birthwt")
    res = evaluate(real=df, synthetic=df, target="low", metrics=["tstr"])
    (leak,) = [w for w in res["meta"]["warnings"] if "alone give the target" in w]
    assert "'bwt' (100.0% of the rows)" in leak and "'low'" in leak and "\n" not in leak
    assert not any("'age'" in w for w in res["meta"]["warnings"])
    train, hold = _pima()
    res = evaluate(real=train, synthetic=hold, target="type", metrics=["tstr"])
    assert not any("alone give the target" in w for w in res["meta"]["warnings"])
