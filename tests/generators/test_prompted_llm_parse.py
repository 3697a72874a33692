"""Reading LLM replies: known cases, and fuzzing (no reply may crash the run or slip past)."""

from __future__ import annotations

import json

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from healthsynth.data import infer_schema
from healthsynth.generators.prompted_llm._parse import parse_reply, valid_rows
from tests.helpers import real

PIMA = real("MASS/Pima.tr")
SCHEMA = infer_schema(PIMA, target="type")
NAMES = SCHEMA.names
ROW = {"npreg": 2, "glu": 120, "bp": 70, "skin": 30, "bmi": 32.1, "ped": 0.5, "age": 33}


def test_json_forms():
    row = {**ROW, "type": "Yes"}
    for text in (
        json.dumps({"rows": [row]}),
        json.dumps([row]),
        "Here they are:\n```json\n" + json.dumps({"rows": [row]}) + "\n```",
        json.dumps({"records": [row]}),  # one list under another key
    ):
        df, dropped = valid_rows(parse_reply(text, fmt="json").rows, SCHEMA)
        assert len(df) == 1 and not dropped, text
    broken = parse_reply('{"rows": [' + json.dumps(row) + ", {", fmt="json")
    assert broken.malformed and len(broken.rows) == 1  # the whole row is salvaged
    cut = parse_reply(
        '{"rows": [' + json.dumps(row) + ', {"npreg": 3, "gl', fmt="json", truncated=True
    )
    assert cut.truncated and not cut.malformed and len(cut.rows) == 1
    assert parse_reply('{"answer": "no"}', fmt="json").malformed


def test_values_are_checked_and_normalised():
    rows = [
        {**ROW, "type": "yes"},  # category in another case: accepted as "Yes"
        {**ROW, "bmi": "32.14", "type": "No"},  # text number, rounded to 1 decimal
        {**ROW, "npreg": 2.5, "type": "No"},  # not whole
        {**ROW, "glu": 500, "type": "No"},  # out of range
        {**ROW, "type": "Maybe"},  # not a category
        {**ROW, "type": None},  # missing where the real column never is
        {k: v for k, v in ROW.items() if k != "age"} | {"type": "No"},  # column missing
        "npreg=2",  # not an object
    ]
    df, dropped = valid_rows(rows, SCHEMA)
    assert list(df["type"]) == ["Yes", "No"] and list(df["bmi"]) == [32.1, 32.1]
    assert dropped == {
        "npreg not a whole number": 1,
        "glu out of domain": 1,
        "type not a category": 1,
        "missing type": 1,
        "missing age": 1,
        "not a row object": 1,
    }
    assert str(df["npreg"].dtype) == "int64"


def test_csv_with_fence_short_lines_and_cut_last_line():
    text = (
        "```csv\n" + ",".join(NAMES) + "\n2,120,70,30,32.1,0.5,33,Yes\n1,2\n3,99,60,20,25.0,0.2,2"
    )
    parsed = parse_reply(text, fmt="csv", truncated=True)
    df, dropped = valid_rows(parsed.rows, SCHEMA)
    assert len(df) == 1 and sum(dropped.values()) == 1


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=True) | st.text(max_size=8),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=6), inner, max_size=4)
    ),
    max_leaves=20,
)
cell = (
    st.none()
    | st.booleans()
    | st.integers(-1000, 1000)
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.sampled_from(["Yes", "No", "yes", "", "NA", "1e3", "1,200", "abc", "0x10"])
)
row_dicts = st.fixed_dictionaries({}, optional={n: cell for n in NAMES})


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(text=st.text(max_size=300), fmt=st.sampled_from(["json", "csv"]), cut=st.booleans())
def test_fuzz_any_text(text, fmt, cut):
    parsed = parse_reply(text, fmt=fmt, truncated=cut)
    df, _ = valid_rows(parsed.rows, SCHEMA)
    SCHEMA.validate(df)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(value=json_values, cut=st.booleans())
def test_fuzz_any_json(value, cut):
    text = json.dumps({"rows": value}) if not isinstance(value, dict) else json.dumps(value)
    parsed = parse_reply(text[: len(text) // 2] if cut else text, fmt="json", truncated=cut)
    df, _ = valid_rows(parsed.rows, SCHEMA)
    SCHEMA.validate(df)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(rows=st.lists(row_dicts, max_size=6))
def test_fuzz_row_values(rows):
    """Whatever values a model writes, what comes out fits the schema, and every row is counted."""
    df, dropped = valid_rows(rows, SCHEMA)
    SCHEMA.validate(df)
    assert len(df) + sum(dropped.values()) == len(rows)


@pytest.mark.parametrize("fmt", ["json", "csv"])
def test_empty_reply(fmt):
    df, dropped = valid_rows(parse_reply("", fmt=fmt).rows, SCHEMA)
    assert len(df) == 0 and list(df.columns) == NAMES


def test_csv_chatter_before_the_header_is_skipped():
    text = "Here are the records:\n" + ",".join(NAMES) + "\n2,120,70,30,32.1,0.5,33,Yes\n"
    df, dropped = valid_rows(parse_reply(text, fmt="csv", columns=NAMES).rows, SCHEMA)
    assert len(df) == 1 and not dropped


def test_boolean_words_map_onto_the_column_categories():
    import pandas as pd

    df = pd.DataFrame({"flag": [0, 1, 1, 0], "x": [1.0, 2.0, 3.0, 4.0]})
    schema = infer_schema(df)
    assert schema["flag"].kind == "boolean"
    rows = [{"flag": v, "x": 2.0} for v in (True, False, "yes", "No", 1, "maybe")]
    out, dropped = valid_rows(rows, schema)
    assert list(out["flag"]) == [1, 0, 1, 0, 1] and dropped == {"flag not a category": 1}
    yes_no = infer_schema(PIMA)
    got, _ = valid_rows([{**ROW, "type": True}, {**ROW, "type": "false"}], yes_no)
    assert list(got["type"]) == ["Yes", "No"]


def test_dates_in_any_format_and_zone():
    import pandas as pd

    real_dates = pd.DataFrame(
        {"when": pd.to_datetime(["2020-01-01", "2020-06-30", "2021-03-01"]), "x": [1, 2, 3]}
    )
    schema = infer_schema(real_dates)
    rows = [
        {"when": "2020-02-02", "x": 1},
        {"when": "03/04/2020", "x": 1},
        {"when": "2020-02-02T10:00:00Z", "x": 1},
        {"when": "2030-01-01", "x": 1},  # out of range
        {"when": "soon", "x": 1},
    ]
    out, dropped = valid_rows(rows, schema)
    assert len(out) == 3 and out["when"].dt.tz is None
    assert dropped == {"when out of domain": 1, "when not a date": 1}
    schema.validate(out)
    zoned = real_dates.assign(when=real_dates["when"].dt.tz_localize("UTC"))
    out, dropped = valid_rows(rows, infer_schema(zoned))
    assert len(out) == 3 and str(out["when"].dt.tz) == "UTC"
