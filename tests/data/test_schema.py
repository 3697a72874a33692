from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from healthsynth.data import Schema, infer_schema
from healthsynth.errors import DataError, SchemaValidationError
from tests.helpers import real


def test_infers_kinds_and_domains_on_nafld1():
    df = real("survival/nafld1")
    s = infer_schema(df, target="status", sensitive=["male"])
    kinds = {c.name: c.kind for c in s.columns}
    assert kinds == {
        "id": "identifier",
        "age": "integer",
        "male": "boolean",
        "weight": "numeric",
        "height": "integer",
        "bmi": "numeric",
        "case.id": "identifier",
        "futime": "integer",
        "status": "boolean",
    }
    assert s["weight"].precision == 1
    assert s["bmi"].precision is None  # computed ratio: full float precision
    assert s["male"].categories == (0, 1)
    assert s["age"].minimum == df.age.min() and s["age"].maximum == df.age.max()
    assert s["weight"].missing_rate == pytest.approx(df.weight.isna().mean(), abs=1e-6)
    assert s.target == "status" and s.sensitive == ["male"]
    assert [c.name for c in s.modelled] == [
        "age",
        "male",
        "weight",
        "height",
        "bmi",
        "futime",
        "status",
    ]


def test_categorical_text_and_datetime():
    df = real("survival/colon")
    df["visit"] = pd.to_datetime("2020-01-01") + pd.to_timedelta(df["time"], unit="D")
    df["note"] = [
        f"patient was seen in clinic number {i} and reported feeling unwell today"
        for i in range(len(df))
    ]
    df["rx"] = df["rx"].astype(str)
    s = infer_schema(df)
    assert s["rx"].kind == "categorical" and set(s["rx"].categories) == {"Obs", "Lev", "Lev+5FU"}
    assert s["visit"].kind == "datetime"
    assert s["note"].kind == "text" and not s["note"].is_modelled


def test_roles_override_and_json_round_trip(tmp_path):
    df = real("MASS/Pima.tr")
    s = infer_schema(df, target="type", sensitive=["age"], identifiers=["npreg"])
    assert s["npreg"].kind == "identifier" and "identifier" in s["npreg"].roles
    s.save(tmp_path / "schema.json")
    raw = json.loads((tmp_path / "schema.json").read_text())
    assert raw["format"] == "healthsynth.schema" and raw["version"] == 1
    back = Schema.load(tmp_path / "schema.json")
    assert back == s
    s2 = s.with_roles(target="bmi")
    assert s2.target == "bmi" and "target" not in s2["type"].roles


def test_validate_reports_every_problem_at_once():
    df = real("MASS/Pima.tr")
    s = infer_schema(df)
    bad = df.copy()
    bad.loc[0, "type"] = "Maybe"
    bad.loc[1, "glu"] = 10_000
    bad.loc[2, "bmi"] = 33.333
    bad = bad.drop(columns=["age"])
    bad["extra"] = 1
    with pytest.raises(SchemaValidationError) as e:
        s.validate(bad)
    text = str(e.value)
    assert len(e.value.problems) == 5
    for part in ("age", "extra", "Maybe", "10000", "decimals"):
        assert part in text
    assert s.validate(df) == []


def test_unknown_target_names_columns():
    df = real("MASS/Pima.tr")
    with pytest.raises(DataError, match="target column 'outcome' is not in the data; the columns"):
        infer_schema(df, target="outcome")


def test_too_many_categories_is_refused_with_advice():
    rng = np.random.default_rng(0)
    df = pd.DataFrame(
        {"code": [f"c{v}" for v in rng.integers(0, 20_000, 40_000)], "x": rng.normal(size=40_000)}
    )
    with pytest.raises(
        DataError,
        match=r"column 'code' .* distinct values, more than "
        r"max_categories=1000; declare it an identifier",
    ):
        infer_schema(df)
    assert infer_schema(df, identifiers=["code"])["code"].kind == "identifier"


def test_mixed_types_named_with_row():
    df = real("MASS/Pima.tr")
    df["glu"] = df["glu"].astype(object)
    df.loc[5, "glu"] = "high"
    with pytest.raises(
        DataError, match=r"column 'glu' .* mixes numbers and text \(e.g. 'high' at row 5\)"
    ):
        infer_schema(df)


def test_duplicate_columns_header_only_and_constant():
    df = real("MASS/Pima.tr")
    dup = pd.concat([df[["age"]], df[["age"]]], axis=1)
    with pytest.raises(DataError, match="duplicate column names: age"):
        infer_schema(dup)
    with pytest.raises(DataError, match="header but no rows"):
        infer_schema(df.iloc[:0])
    df["site"] = "A"
    df["empty"] = np.nan
    s = infer_schema(df)
    assert s["site"].categories == ("A",)
    assert s["empty"].missing_rate == 1.0
