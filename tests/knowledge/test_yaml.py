"""Reading YAML rule files: the format, the example files, and one-line errors."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from healthsynth.data import infer_schema
from healthsynth.errors import DataFileError, SchemaValidationError
from healthsynth.knowledge import Predicate, RuleSet, load_rules
from tests.helpers import real

EXAMPLES = Path(__file__).resolve().parents[2] / "examples" / "rules"


def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "rules.yaml"
    path.write_text(text, encoding="utf-8")
    return path


def test_full_format(tmp_path):
    path = _write(
        tmp_path,
        """
version: 1
rules:
  - range: {column: age, min: 0, max: 120}
  - name: no-pregnancy-in-men
    if: {sex: male}
    then: {pregnant: no}
  - if: {sex: [m, male], age: {min: 50}}
    then: {psa: {max: 100}, smoker: [0, 1]}
    missing_ok: false
    description: several then-keys make one rule each
  - if: {dx: {starts_with: [O, Z3A]}}
    then: {sex: F}
  - then: {status: [0, 1, 2]}
""",
    )
    rules = load_rules(path)
    assert [r.name for r in rules] == [
        "range:age",
        "no-pregnancy-in-men",
        "implication:sex+age->psa",
        "implication:sex+age->smoker",
        "implication:dx->sex",
        "implication:status",
    ]
    by = {r.name: r for r in rules}
    assert by["range:age"].then == Predicate("age", minimum=0, maximum=120)
    assert by["range:age"].source == "range" and by["range:age"].when == ()
    # `no` stays text (YAML 1.2 booleans), so it matches the data value "no"
    assert by["no-pregnancy-in-men"].then.values == ("no",)
    psa = by["implication:sex+age->psa"]
    assert psa.when == (Predicate("sex", values=("m", "male")), Predicate("age", minimum=50))
    assert psa.then == Predicate("psa", maximum=100)
    assert psa.missing_ok is False and psa.source == "implication"
    assert by["implication:dx->sex"].when[0].prefixes == ("O", "Z3A")
    assert by["implication:status"].when == ()


def test_named_rule_with_several_then_keys(tmp_path):
    path = _write(
        tmp_path, "version: 1\nrules:\n  - name: men\n    if: {sex: m}\n    then: {a: 1, b: 2}\n"
    )
    assert [r.name for r in load_rules(path)] == ["men:a", "men:b"]


def test_version_may_be_omitted(tmp_path):
    assert len(load_rules(_write(tmp_path, "rules:\n  - then: {sex: [m, f]}\n"))) == 1


BAD = [
    # (file content, words the one-line message must contain)
    ("", ["is empty"]),
    ("- range: {column: age, min: 0}\n", ["must be a mapping with 'version' and 'rules'"]),
    ("version: 1\n", ["no 'rules' key"]),
    ("version: 2\nrules: []\n", ["version 2", "reads version 1"]),
    ("version: 1\nrules: []\nextra: 1\n", ["unknown top-level key 'extra'"]),
    ("version: 1\nrules: {a: 1}\n", ["'rules' must be a list"]),
    ("version: 1\nrules:\n  - [a]\n", ["rule 1", "must be a mapping"]),
    ("version: 1\nrules:\n  - name: x\n", ["rule 1", "exactly one of the keys"]),
    ("version: 1\nrules:\n  - range: {column: age}\n", ["rule 1", "'range.min' or 'range.max'"]),
    (
        "version: 1\nrules:\n  - then: {a: 1}\n  - range: {column: age, min: 9, max: 1}\n",
        ["rule 2", "'range.min' (9) is greater than 'range.max' (1)", "swap"],
    ),
    (
        "version: 1\nrules:\n  - range: {column: age, min: x}\n",
        ["rule 1", "'range.min' must be a number"],
    ),
    ("version: 1\nrules:\n  - range: {col: age, min: 0}\n", ["rule 1", "unknown key 'col'"]),
    (
        "version: 1\nrules:\n  - range: {column: age, min: 0}\n    colour: red\n",
        ["unknown key 'colour'"],
    ),
    (
        "version: 1\nrules:\n  - if: [sex, male]\n    then: {p: no}\n",
        ["rule 1", "key 'if' must be a mapping"],
    ),
    ("version: 1\nrules:\n  - if: {sex: male}\n", ["rule 1", "key 'then' is missing"]),
    ("version: 1\nrules:\n  - if: {sex: male}\n    then: {}\n", ["key 'then' must be a non-empty"]),
    ("version: 1\nrules:\n  - if: {sex: []}\n    then: {p: no}\n", ["'if.sex' is an empty list"]),
    ("version: 1\nrules:\n  - if: {sex: }\n    then: {p: no}\n", ["'if.sex' has no value"]),
    (
        "version: 1\nrules:\n  - if: {age: {min: 5, max: 1}}\n    then: {p: no}\n",
        ["'if.age.min' (5)"],
    ),
    (
        "version: 1\nrules:\n  - if: {age: {above: 5}}\n    then: {p: no}\n",
        ["unknown key 'above' in 'if.age'"],
    ),
    (
        "version: 1\nrules:\n  - then: {a: 1}\n    missing_ok: maybe\n",
        ["'missing_ok' must be true or false"],
    ),
    (
        "version: 1\nrules:\n  - range: {column: a, min: 0}\n  - range: {column: a, max: 1}\n",
        ["rule 2", "'range:a' is already used"],
    ),
    ("version: 1\nrules:\n  - icd10cm: {sex_column: sex}\n", ["'icd10cm.code_column' is missing"]),
    (
        "version: 1\nrules:\n  - icd10cm: {code_column: dx}\n",
        ["needs 'sex_column' or 'age_column'"],
    ),
    (
        "version: 1\nrules:\n  - icd10cm: {code_column: dx, sex: s}\n",
        ["unknown key 'sex' in 'icd10cm'"],
    ),
    (
        "version: 1\nrules:\n  - icd10cm:\n"
        "      {code_column: dx, age_column: a, maternal_age: [50, 10]}\n",
        ["'icd10cm.maternal_age' must be [min, max]"],
    ),
    ("version: 1\nrules:\n  - range: {column: age, min: 0\n", ["not valid YAML at line"]),
]


@pytest.mark.parametrize(("text", "words"), BAD)
def test_bad_files_give_one_sentence(tmp_path, text, words):
    path = _write(tmp_path, text)
    with pytest.raises(DataFileError) as info:
        load_rules(path)
    message = str(info.value)
    assert "\n" not in message
    assert f"rules file '{path}'" in message
    for w in words:
        assert w in message


def test_missing_file(tmp_path):
    with pytest.raises(DataFileError, match="does not exist"):
        load_rules(tmp_path / "nope.yaml")


def test_unknown_column_is_found_at_check_time(tmp_path):
    rules = load_rules(
        _write(tmp_path, "version: 1\nrules:\n  - if: {sex: m}\n    then: {pregnant: 'no'}\n")
    )
    with pytest.raises(
        SchemaValidationError, match="uses column 'pregnant', which is not in the data"
    ):
        rules.check(infer_schema(real("survival/pbc")))


def test_pbc_example_file_checks_and_counts():
    pbc = real("survival/pbc")
    rules = load_rules(EXAMPLES / "pbc.yaml")
    rules.check(infer_schema(pbc))
    counts = rules.violations(pbc).sum()
    expected = int(((pbc["ascites"] == 1) & (pbc["stage"] < 3)).sum())
    assert counts["ascites-advanced-stage"] == expected == 2
    assert counts.drop("ascites-advanced-stage").sum() == 0
    assert RuleSet.from_dict(rules.to_dict()) == rules


def test_icd10cm_example_file():
    rules = load_rules(EXAMPLES / "icd10cm.yaml")
    df = pd.DataFrame(
        {
            "dx": ["N40.1", "N401", "O80", "O80", "P07.3", "F03.90", "I10"],
            "sex": ["F", "m", "F", "f", "M", "M", "F"],
            "age": [60, 70, 30, 9, 0, 25, 130],
        }
    )
    bad = rules.violations(df)
    rows = {name: bad.index[bad[name]].tolist() for name in bad.columns}
    assert rows["icd10cm-male:dx"] == [0]
    assert rows["icd10cm-maternal-age:dx"] == [3]
    assert rows["icd10cm-female:dx"] == []
    assert rows["icd10cm-newborn-age:dx"] == []
    assert rows["dementia-age"] == [5]
    assert rows["range:age"] == [6]
