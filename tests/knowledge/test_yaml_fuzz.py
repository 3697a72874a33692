"""Fuzzing the rules reader: any file gives a RuleSet or one clear DataFileError, nothing else."""

from __future__ import annotations

import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from healthsynth.errors import DataFileError
from healthsynth.knowledge import RuleSet, load_rules

_scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-5, 200),
    st.floats(allow_nan=True, allow_infinity=True),
    st.sampled_from(["age", "sex", "m", "f", "N40", "dx", "min", "max", "", "if", "then"]),
)
_values = st.recursive(
    _scalars,
    lambda inner: st.one_of(
        st.lists(inner, max_size=3),
        st.dictionaries(
            st.sampled_from(
                ["range", "column", "min", "max", "if", "then", "name", "icd10cm",
                 "code_column", "sex_column", "female", "male", "age_column", "description",
                 "starts_with", "missing_ok", "age", "sex", "dx"]
            ),
            inner,
            max_size=4,
        ),
    ),
    max_leaves=12,
)  # fmt: skip


def _check(path):
    try:
        rules = load_rules(path)
    except DataFileError as e:
        text = str(e)
        assert "\n" not in text and str(path.name) in text
        return
    assert isinstance(rules, RuleSet)


@settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(doc=st.dictionaries(st.sampled_from(["version", "rules", "other"]), _values, max_size=3))
def test_structured_yaml_never_crashes(tmp_path, doc):
    path = tmp_path / "rules.yaml"
    path.write_text(yaml.safe_dump(doc), encoding="utf-8")
    _check(path)


@settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(raw=st.binary(max_size=200))
def test_arbitrary_bytes_never_crash(tmp_path, raw):
    path = tmp_path / "rules.yaml"
    path.write_bytes(raw)
    _check(path)


@settings(
    max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(rules=st.lists(_values, max_size=4))
def test_rule_lists_never_crash(tmp_path, rules):
    path = tmp_path / "rules.yaml"
    path.write_text(yaml.safe_dump({"version": 1, "rules": rules}), encoding="utf-8")
    _check(path)
