"""The clinical rule-violation metric on real pbc data, against independent pandas counts."""

from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from healthsynth.data import infer_schema, train_holdout_split
from healthsynth.evaluate import get_metric, run_metric
from healthsynth.evaluate.clinical.rule_violations import compute
from healthsynth.knowledge import Predicate, Rule, RuleSet, icd10cm_rules, load_rules
from tests.helpers import real

EXAMPLES = Path(__file__).resolve().parents[3] / "examples" / "rules"


@pytest.fixture(scope="module")
def split():
    pbc = real("survival/pbc")
    train, holdout = train_holdout_split(pbc, holdout=0.3, seed=0)
    return pbc, train, holdout, infer_schema(pbc)


def _rules() -> RuleSet:
    return RuleSet(
        [
            Rule(
                name="age-30-70",
                when=(),
                then=Predicate("age", minimum=30, maximum=70),
                source="range",
            ),
            Rule(
                name="men-40",
                when=(Predicate("sex", values=("m",)),),
                then=Predicate("age", minimum=40),
                source="implication",
            ),
            Rule(
                name="ascites-stage",
                when=(Predicate("ascites", values=(1,)),),
                then=Predicate("stage", minimum=3),
                source="implication",
            ),
        ]
    )


def _pandas_violations(df: pd.DataFrame) -> dict[str, pd.Series]:
    return {
        "age-30-70": ~df["age"].between(30, 70),
        "men-40": (df["sex"] == "m") & (df["age"] < 40),
        "ascites-stage": (df["ascites"] == 1) & (df["stage"] < 3),
    }


def test_real_rates_match_pandas(split):
    _, train, holdout, schema = split
    # the "synthetic" table is real training rows, so both sides are known exactly
    records = compute(real=train, synthetic=train, holdout=holdout, schema=schema, rules=_rules())
    overall, *per_rule = records
    syn, ref = _pandas_violations(train), _pandas_violations(holdout)
    syn_any = pd.concat(syn, axis=1).any(axis=1)
    ref_any = pd.concat(ref, axis=1).any(axis=1)
    assert 0 < syn_any.sum() < len(train)

    assert overall.name == "rule_violation_rate" and overall.dimension == "clinical"
    assert overall.direction == "lower" and overall.subgroup is None
    assert overall.value == pytest.approx(syn_any.mean())
    assert overall.reference == pytest.approx(ref_any.mean())
    assert overall.details["reference_table"] == "holdout"
    lo, hi = overall.interval
    assert lo < overall.value < hi
    by_name = {d["name"]: d for d in overall.details["rules"]}
    for name in syn:
        d = by_name[name]
        assert d["synthetic_violations"] == int(syn[name].sum())
        assert d["synthetic_rate"] == pytest.approx(syn[name].mean())
        assert d["real_rate"] == pytest.approx(ref[name].mean())
        assert set(d) >= {"description", "source", "applicable_rows"}
    assert by_name["men-40"]["applicable_rows"] == int((train["sex"] == "m").sum())
    assert [r.subgroup for r in per_rule] == ["rule:age-30-70", "rule:men-40", "rule:ascites-stage"]
    for r in per_rule:
        name = r.subgroup.removeprefix("rule:")
        assert r.value == pytest.approx(syn[name].mean())
        assert r.reference == pytest.approx(ref[name].mean())
        assert r.status == "ok" and r.direction == "lower"
    json.dumps([r.to_dict() for r in records])  # feeds the JSON scorecard as is


def test_reference_is_real_without_holdout(split):
    pbc, train, _, schema = split
    shuffled = pbc.sample(frac=1.0, random_state=1).reset_index(drop=True)
    overall = compute(real=train, synthetic=shuffled, schema=schema, rules=_rules())[0]
    assert overall.details["reference_table"] == "real"
    ref_any = pd.concat(_pandas_violations(train), axis=1).any(axis=1)
    assert overall.reference == pytest.approx(ref_any.mean())


@pytest.mark.parametrize("rules", [None, [], RuleSet([])])
def test_no_rules_is_not_applicable(split, rules):
    _, train, holdout, schema = split
    (record,) = compute(real=train, synthetic=train, holdout=holdout, schema=schema, rules=rules)
    assert record.status == "not_applicable"
    assert record.name == "rule_violations" and record.dimension == "clinical"
    assert "--rules" in record.message


def test_rules_on_missing_columns_are_not_applicable_others_scored(split):
    _, train, holdout, schema = split
    rules = RuleSet(
        [
            *_rules(),
            Rule(
                name="men-not-pregnant",
                when=(Predicate("sex", values=("m",)),),
                then=Predicate("pregnant", values=("no",)),
            ),
        ]
    )
    overall, *per_rule = compute(
        real=train, synthetic=train, holdout=holdout, schema=schema, rules=rules
    )
    assert overall.status == "ok"
    assert overall.details["n_rules_scored"] == 3
    skipped = [r for r in per_rule if r.status == "not_applicable"]
    assert len(skipped) == 1
    assert skipped[0].subgroup == "rule:men-not-pregnant"
    assert "pregnant" in skipped[0].message
    # every rule lacks a column: the overall record says so
    only = RuleSet([rules.rules[-1]])
    overall, rec = compute(real=train, synthetic=train, holdout=holdout, schema=schema, rules=only)
    assert overall.status == "not_applicable" and rec.status == "not_applicable"


def test_rule_file_path_and_registry(split):
    _, train, holdout, schema = split
    records = run_metric(
        "rule_violations",
        real=train,
        synthetic=train,
        holdout=holdout,
        schema=schema,
        rules=str(EXAMPLES / "pbc.yaml"),
        training={"ignored": True},
    )
    assert get_metric("rule_violations") is compute
    overall = records[0]
    assert overall.status == "ok"
    expected = ((train["ascites"] == 1) & (train["stage"] < 3)).mean()
    assert overall.value == pytest.approx(expected)
    assert len(records) == 1 + len(load_rules(EXAMPLES / "pbc.yaml"))


def test_inputs_are_not_mutated(split):
    _, train, holdout, schema = split
    before = train.copy()
    compute(real=train, synthetic=train, holdout=holdout, schema=schema, rules=_rules())
    pd.testing.assert_frame_equal(train, before)


def test_fast_on_100k_rows(split):
    # 100k rows of real pbc rows (resampled) plus an ICD-10-CM code column
    pbc, _, _, schema = split
    rng = np.random.default_rng(0)
    big = pbc.iloc[rng.integers(0, len(pbc), 100_000)].reset_index(drop=True)
    codes = np.array(["N40.1", "O80", "P07.3", "I10", "C61", "Z3A.20", "K74.3", "E11.9"])
    big["dx"] = codes[rng.integers(0, len(codes), len(big))]
    rules = RuleSet(
        [
            *_rules(),
            *icd10cm_rules("dx", sex_column="sex", female=["f"], male=["m"], age_column="age"),
        ]
    )
    start = time.perf_counter()
    overall, *_ = compute(real=big, synthetic=big, schema=schema, rules=rules)
    took = time.perf_counter() - start
    assert overall.status == "ok"
    male_only = big["dx"].isin(["N40.1", "C61"]) & (big["sex"] != "m")
    female_only = big["dx"].isin(["O80", "Z3A.20"]) & (big["sex"] != "f")
    by = {d["name"]: d for d in overall.details["rules"]}
    assert by["icd10cm-male:dx"]["synthetic_violations"] == int(male_only.sum())
    assert by["icd10cm-female:dx"]["synthetic_violations"] == int(female_only.sum())
    assert took < 10, took
