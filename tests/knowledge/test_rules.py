"""Known-answer tests for Predicate, Rule and RuleSet."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from healthsynth.data import infer_schema
from healthsynth.errors import DataError, ParameterError, SchemaValidationError
from healthsynth.knowledge import Predicate, Rule, RuleSet
from tests.helpers import real


@pytest.fixture(scope="module")
def pbc() -> pd.DataFrame:
    return real("survival/pbc")


# -- Predicate: exact semantics on small hand-built Series -------------------------------------

MEMBERSHIP_CASES = [
    # (listed values, data, expected)
    (("1",), [1, "1", 1.0, 2, None], [True, True, True, False, False]),
    ((1,), ["1", 1, np.nan, "01", "x"], [True, True, False, True, False]),
    (("1",), ["01", "1.0", 1.0, " 1"], [False, False, True, True]),
    ((True,), [True, "true", "True", "TRUE", False, "yes"], [True, True, True, True, False, False]),
    (
        ("M", "male"),
        ["m", "M", " male ", "Male", "f", pd.NA],
        [True, True, True, True, False, False],
    ),
    ((0.5,), [0.5, "0.5", 0.50000, 1.0, np.nan], [True, True, True, False, False]),
]


@pytest.mark.parametrize(("values", "data", "expected"), MEMBERSHIP_CASES)
def test_membership_known_answers(values, data, expected):
    p = Predicate("x", values=values)
    got = p.holds(pd.Series(data, dtype=object))
    assert got.dtype == bool
    assert got.tolist() == expected


PREFIX_CASES = [
    (("N40",), ["N40.1", "N401", "n40", " N40.0 ", "N4", "N41", None], [1, 1, 1, 1, 0, 0, 0]),
    (("n4.0", "Z3A"), ["N40", "Z3A.10", "Z3A10", "Z31", np.nan], [1, 1, 1, 0, 0]),
    (("O",), ["O80", "O9A.11", "P07.3", "I10"], [1, 1, 0, 0]),
]


@pytest.mark.parametrize(("prefixes", "data", "expected"), PREFIX_CASES)
def test_prefix_known_answers(prefixes, data, expected):
    p = Predicate("dx", prefixes=prefixes)
    assert p.holds(pd.Series(data, dtype=object)).tolist() == [bool(e) for e in expected]


def test_prefixes_are_stored_normalized():
    assert Predicate("dx", prefixes=("n40.1", "Z3A")).prefixes == ("N401", "Z3A")


RANGE_CASES = [
    ((12, 55), [12, 55, 11.99, 55.01, None, "30", "thirty"], [1, 1, 0, 0, 0, 1, 0]),
    ((None, 1), [0, 1, 1.5, -3, np.nan], [1, 1, 0, 1, 0]),
    ((15, None), [15, 14, 120], [1, 0, 1]),
]


@pytest.mark.parametrize(("bounds", "data", "expected"), RANGE_CASES)
def test_range_known_answers(bounds, data, expected):
    p = Predicate("age", minimum=bounds[0], maximum=bounds[1])
    assert p.holds(pd.Series(data, dtype=object)).tolist() == [bool(e) for e in expected]


def test_predicate_on_categorical_and_nullable_dtypes():
    s = pd.Series(["m", "f", None], dtype="category")
    assert Predicate("sex", values=("m",)).holds(s).tolist() == [True, False, False]
    n = pd.Series([1, None, 3], dtype="Int64")
    assert Predicate("n", minimum=2).holds(n).tolist() == [False, False, True]
    assert Predicate("n", values=("1",)).holds(n).tolist() == [True, False, False]


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({}, "exactly one of values, prefixes or a range"),
        ({"values": ("a",), "minimum": 1}, "exactly one of"),
        ({"values": ("a",), "prefixes": ("N",)}, "exactly one of"),
        ({"values": ()}, "at least one value"),
        ({"values": (None,)}, "missing value"),
        ({"prefixes": ("",)}, "non-empty codes"),
        ({"minimum": 5, "maximum": 1}, "greater than maximum 1"),
        ({"minimum": "a"}, "finite number"),
    ],
)
def test_predicate_validation(kwargs, message):
    with pytest.raises(ParameterError, match=message):
        Predicate("x", **kwargs)


@pytest.mark.parametrize(
    ("predicate", "text"),
    [
        (Predicate("sex", values=("male",)), "sex in {male}"),
        (Predicate("age", minimum=12, maximum=55), "age in [12, 55]"),
        (Predicate("age", maximum=1), "age ≤ 1"),
        (Predicate("bili", minimum=0.1), "bili ≥ 0.1"),
        (Predicate("dx", prefixes=("O", "Z3A")), "dx starts with O, Z3A"),
    ],
)
def test_describe(predicate, text):
    assert predicate.describe() == text


# -- Rule ----------------------------------------------------------------------------------------


def test_rule_columns_when_first_without_duplicates():
    r = Rule(
        name="r",
        when=(Predicate("sex", values=("m",)), Predicate("age", minimum=1)),
        then=Predicate("sex", values=("m", "f")),
    )
    assert r.columns == ("sex", "age")


def test_rule_missing_ok():
    df = pd.DataFrame({"sex": ["m", "m", "m", "f"], "preg": ["no", None, "yes", "yes"]})
    when = (Predicate("sex", values=("m",)),)
    then = Predicate("preg", values=("no",))
    lenient = Rule(name="a", when=when, then=then)
    strict = Rule(name="b", when=when, then=then, missing_ok=False)
    assert lenient.violations(df).tolist() == [False, False, True, False]
    assert strict.violations(df).tolist() == [False, True, True, False]
    assert "if sex in {m} then preg in {no}" == lenient.description


def test_rule_on_pbc_matches_pandas(pbc):
    # "men in this trial were at least 40": an implication that some real rows break
    rule = Rule(
        name="men-40", when=(Predicate("sex", values=("m",)),), then=Predicate("age", minimum=40)
    )
    expected = (pbc["sex"] == "m") & ~(pbc["age"] >= 40)
    assert expected.sum() > 0
    np.testing.assert_array_equal(rule.violations(pbc), expected.to_numpy())
    assert rule.applies(pbc).sum() == (pbc["sex"] == "m").sum()


# -- RuleSet -------------------------------------------------------------------------------------


def _pbc_rules() -> RuleSet:
    return RuleSet(
        [
            Rule(
                name="range:age",
                when=(),
                then=Predicate("age", minimum=30, maximum=70),
                source="range",
            ),
            Rule(
                name="ascites-stage",
                when=(Predicate("ascites", values=(1,)),),
                then=Predicate("stage", minimum=3),
                source="implication",
            ),
            Rule(
                name="men-40",
                when=(Predicate("sex", values=("m",)),),
                then=Predicate("age", minimum=40),
                source="implication",
            ),
        ]
    )


def test_ruleset_violations_and_summary_match_pandas(pbc):
    rules = _pbc_rules()
    table = rules.violations(pbc)
    assert list(table.columns) == ["range:age", "ascites-stage", "men-40"]
    assert table.index.equals(pbc.index)
    expected = {
        "range:age": ~pbc["age"].between(30, 70),
        "ascites-stage": (pbc["ascites"] == 1) & (pbc["stage"] < 3),
        "men-40": (pbc["sex"] == "m") & (pbc["age"] < 40),
    }
    applicable = {
        "range:age": len(pbc),
        "ascites-stage": int((pbc["ascites"] == 1).sum()),
        "men-40": int((pbc["sex"] == "m").sum()),
    }
    for name, exp in expected.items():
        np.testing.assert_array_equal(table[name].to_numpy(), exp.to_numpy(), err_msg=name)
    for row in rules.summary(pbc):
        n = int(expected[row["name"]].sum())
        assert row["n_violations"] == n
        assert row["n_rows_applicable"] == applicable[row["name"]]
        assert row["rate"] == pytest.approx(n / len(pbc))
        assert row["source"] in ("range", "implication")


def test_ruleset_missing_column_is_a_data_error(pbc):
    rules = RuleSet([Rule(name="p", when=(), then=Predicate("pregnant", values=("no",)))])
    with pytest.raises(DataError, match="'pregnant' \\(rule p\\)"):
        rules.violations(pbc)


def test_ruleset_duplicate_names():
    r = Rule(name="a", when=(), then=Predicate("x", values=(1,)))
    with pytest.raises(ParameterError, match="'a' is used twice"):
        RuleSet([r, r])


def test_check_reports_every_problem_at_once(pbc):
    schema = infer_schema(pbc)
    rules = RuleSet(
        [
            Rule(name="unknown", when=(), then=Predicate("pregnant", values=("no",))),
            Rule(name="range-on-sex", when=(), then=Predicate("sex", minimum=0)),
            Rule(
                name="no-category",
                when=(Predicate("sex", values=("male", "man")),),
                then=Predicate("age", minimum=18),
            ),
            Rule(
                name="one-category-ok",
                when=(Predicate("sex", values=("m", "male")),),
                then=Predicate("age", minimum=18),
            ),
            Rule(name="prefix-on-number", when=(), then=Predicate("age", prefixes=("1",))),
        ]
    )
    with pytest.raises(SchemaValidationError) as info:
        rules.check(schema)
    problems = info.value.problems
    assert len(problems) == 4
    assert "rule 'unknown' uses column 'pregnant', which is not in the data" in problems[0]
    assert "time, status" in problems[0]  # lists the available columns
    assert "numeric range on column 'sex', which is categorical" in problems[1]
    assert "none of these is among its categories" in problems[2]
    assert "prefixes" in problems[3]
    assert all("\n" not in p for p in problems)
    _pbc_rules().check(schema)  # a valid rule set raises nothing


def test_to_dict_json_round_trip():
    rules = _pbc_rules()
    rules = RuleSet(
        [
            *rules,
            Rule(
                name="dx",
                when=(Predicate("dx", prefixes=("N40",)),),
                then=Predicate("sex", values=("M", 1)),
            ),
        ]
    )
    d = json.loads(json.dumps(rules.to_dict()))
    assert d["version"] == 1
    back = RuleSet.from_dict(d)
    assert back == rules
    assert [r.name for r in back] == [r.name for r in rules]
    with pytest.raises(ParameterError, match="version must be 1"):
        RuleSet.from_dict({**d, "version": 2})
