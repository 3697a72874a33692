"""Clinical rules are enforced while decoding: zero violations, on real data."""

from __future__ import annotations

from pathlib import Path

import pytest

from healthsynth.errors import ConditionError, ParameterError
from healthsynth.generators import load_generator
from healthsynth.generators.tabular_lm import TabularLM
from healthsynth.knowledge import RuleSet, load_rules, rules_from_yaml_data
from tests.helpers import real

EXAMPLES = Path(__file__).resolve().parents[2] / "examples" / "rules"

# rules the real pbc rows break often, so an unconstrained model would break them too
STRICT = {
    "version": 1,
    "rules": [
        {"if": {"sex": "m"}, "then": {"age": {"max": 50}}},
        {"if": {"age": {"min": 60}}, "then": {"sex": "m"}},
        {"if": {"stage": {"min": 3}}, "then": {"bili": {"max": 3}}},
        {"if": {"ascites": 1}, "then": {"edema": 1}},
        {"range": {"column": "chol", "min": 200, "max": 400}},
        {"if": {"albumin": {"max": 3}}, "then": {"stage": 4}},
    ],
}


@pytest.fixture(scope="module")
def pbc_rules():
    rules = rules_from_yaml_data(STRICT, source="test")
    return RuleSet(list(rules) + list(load_rules(EXAMPLES / "pbc.yaml")))


@pytest.fixture(scope="module")
def pbc_model(pbc_rules):
    df = real("survival/pbc")
    return TabularLM(n_embd=48, n_layer=2, n_head=4, epochs=25, seed=0, privacy_stop=False).fit(
        df, rules=pbc_rules
    )


def test_real_data_breaks_the_rules_but_samples_never_do(pbc_model, pbc_rules):
    df = real("survival/pbc")
    assert pbc_rules.violations(df).to_numpy().sum() > 100
    syn = pbc_model.sample(2000, seed=1)
    assert len(syn) == 2000
    assert pbc_rules.violations(syn).to_numpy().sum() == 0
    # continuous columns are clamped inside their allowed range, not piled on one value
    assert syn["chol"].dropna().between(200, 400).all()
    assert syn["chol"].dropna().nunique() > 50
    men = syn[syn["sex"] == "m"]
    assert len(men) > 0 and men["age"].max() <= 50


def test_rules_hold_under_conditions_and_survive_save_load(pbc_model, pbc_rules, tmp_path):
    syn = pbc_model.sample(300, seed=2, conditions={"sex": "m", "stage": 4})
    assert pbc_rules.violations(syn).to_numpy().sum() == 0
    pbc_model.save(tmp_path / "m")
    loaded = load_generator(tmp_path / "m")
    assert loaded.rules_ == pbc_rules
    again = loaded.sample(300, seed=2, conditions={"sex": "m", "stage": 4})
    assert again.equals(syn)


def test_conditions_that_contradict_a_rule_fail_clearly(pbc_model):
    with pytest.raises(ConditionError, match="cannot all hold"):
        pbc_model.sample(20, seed=0, conditions={"sex": "m", "age": ">=55"})


def test_rules_on_unmodelled_or_continuous_value_lists_are_refused():
    df = real("survival/pbc")
    bad = rules_from_yaml_data(
        {"version": 1, "rules": [{"then": {"bili": [1.0, 2.0]}}]}, source="test"
    )
    with pytest.raises(ParameterError, match="continuous column 'bili'"):
        TabularLM(epochs=1, privacy_stop=False).fit(df, rules=bad)


def test_same_column_rule_and_unsatisfiable_rule():
    df = real("survival/pbc")
    rules = rules_from_yaml_data(
        {"version": 1, "rules": [{"if": {"stage": {"min": 4}}, "then": {"stage": {"max": 2}}}]},
        source="test",
    )  # i.e. "stage is never 4": stages 1-3 must all stay possible
    model = TabularLM(n_embd=32, n_layer=1, n_head=2, epochs=4, seed=0, privacy_stop=False)
    syn = model.fit(df, rules=rules).sample(600, seed=0)
    assert rules.violations(syn).to_numpy().sum() == 0
    assert set(syn["stage"].dropna().unique()) == {1.0, 2.0, 3.0}
    never = rules_from_yaml_data(
        {"version": 1, "rules": [{"range": {"column": "age", "min": 200, "max": 300}}]},
        source="test",
    )
    with pytest.raises(ParameterError, match="allows no value"):
        TabularLM(epochs=1, privacy_stop=False).fit(df, rules=never)
