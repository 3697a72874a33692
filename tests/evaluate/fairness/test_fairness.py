from __future__ import annotations

from healthsynth.data import infer_schema, train_holdout_split
from healthsynth.evaluate.fairness import subgroup_fidelity, subgroup_shares, subgroup_utility
from tests.helpers import real


def _colon():
    df = real("survival/colon").drop(columns="id")
    schema = infer_schema(df, target="status", sensitive=["sex", "age"])
    train, hold = train_holdout_split(df, holdout=0.3, seed=0)
    return train, hold, schema


def test_subgroup_shares_known_answers():
    train, hold, schema = _colon()
    recs = subgroup_shares.compute(real=train, synthetic=train, holdout=hold, schema=schema)
    shares = [r for r in recs if r.name == "subgroup_share"]
    assert {r.subgroup for r in shares} >= {"sex=0", "sex=1"}
    assert all(r.value == r.reference for r in shares)
    age_groups = [r for r in shares if r.subgroup.startswith("age")]
    assert len(age_groups) == 4 and abs(sum(r.value for r in age_groups) - 1) < 1e-9
    # only women: the share distance is the men's share
    women = train[train["sex"] == 0]
    recs = subgroup_shares.compute(real=train, synthetic=women, holdout=hold, schema=schema)
    (dist,) = [r for r in recs if r.name == "subgroup_share_distance" and r.subgroup == "sex"]
    assert abs(dist.value - float((train["sex"] == 1).mean())) < 1e-9


def test_subgroup_fidelity_flags_the_group_served_badly():
    train, hold, schema = _colon()
    # men's rows get their nodes count replaced by a constant: only men's fidelity drops
    syn = train.copy()
    syn.loc[syn["sex"] == 1, "nodes"] = 30
    recs = subgroup_fidelity.compute(real=train, synthetic=syn, holdout=hold, schema=schema)
    by = {r.subgroup: r.value for r in recs if r.subgroup in ("sex=0", "sex=1")}
    assert by["sex=0"] == 0.0 and by["sex=1"] > 0.05


def test_subgroup_utility_finds_the_worst_group():
    train, hold, schema = _colon()
    recs = subgroup_utility.compute(real=train, synthetic=train, holdout=hold, schema=schema)
    per = [r for r in recs if r.name == "subgroup_tstr_auc" and r.status == "ok"]
    assert per and all(r.value == r.reference for r in per)
    gaps = [r for r in recs if r.name == "subgroup_utility_gap_max"]
    assert {r.subgroup for r in gaps} == {"sex", "age"} and all(r.value == 0 for r in gaps)


def test_not_applicable_without_sensitive_columns():
    df = real("MASS/Pima.tr")
    schema = infer_schema(df, target="type")
    for mod in (subgroup_shares, subgroup_fidelity, subgroup_utility):
        (rec,) = mod.compute(real=df, synthetic=df, holdout=df, schema=schema)
        assert rec.status == "not_applicable" and "--sensitive" in rec.message


def test_coded_numeric_sensitive_column_gets_one_group_per_value():
    df = real("survival/pbc")
    schema = infer_schema(df, sensitive=["stage"])
    recs = subgroup_shares.compute(real=df, synthetic=df, schema=schema)
    labels = {r.subgroup for r in recs if r.name == "subgroup_share"}
    assert labels == {"stage=1", "stage=2", "stage=3", "stage=4"}
