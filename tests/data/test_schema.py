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


# -- precision ----------------------------------------------------------------------------------
#: What a person reading the values would say each numeric column's precision is.
HUMAN_PRECISION = {
    "survival/flchain": {"kappa": 3, "lambda": 3, "creatinine": 1},
    "survival/pbc": {
        "age": None,  # years computed from days: a ratio at full float precision
        "edema": 1,
        "bili": 1,
        "albumin": 2,
        "alk.phos": 1,
        "ast": 2,
        "protime": 1,
    },
    "survival/gbsg": {},  # whole numbers only
    "MASS/Pima.tr": {"bmi": 1, "ped": 3},
    "survival/nafld1": {"weight": 1, "bmi": None},
}


@pytest.mark.parametrize("name", sorted(HUMAN_PRECISION))
def test_precision_is_what_a_person_would_say(name):
    df = real(name)
    s = infer_schema(df)
    numeric = {c.name: c.precision for c in s.columns if c.kind == "numeric"}
    assert numeric == HUMAN_PRECISION[name]
    assert all(c.precision == 0 for c in s.columns if c.kind == "integer")
    assert s.validate(df) == []  # a few values with more decimals are still valid data


def test_one_odd_value_does_not_set_the_precision_of_flchain():
    df = real("survival/flchain")
    s = infer_schema(df)
    # 1 of 7,874 kappa values has 4 decimals (0.9732); lambda has 4 with 4 decimals and one
    # ratio stored at full precision, 0.92248062015503, which has 10 below the noise
    assert (s["kappa"].precision, s["kappa"].max_decimals) == (3, 4)
    assert (s["lambda"].precision, s["lambda"].max_decimals) == (3, 10)
    assert s["creatinine"].max_decimals is None
    # float noise is not a decimal: 0.1 + 0.2 has one
    noisy = df.assign(creatinine=df["creatinine"] + 0.1 + 0.2 - 0.3)
    assert (noisy["creatinine"] != df["creatinine"]).any()
    assert infer_schema(noisy)["creatinine"].precision == 1
    # values beyond even the most precise real one are flagged
    bad = df.copy()
    bad.loc[3, "kappa"] = 1.23456
    with pytest.raises(SchemaValidationError, match="'kappa' has values with more than 4 decimals"):
        s.validate(bad)


def test_every_value_counts_below_100_values():
    df = real("MASS/Pima.tr", 99)
    df.loc[0, "bmi"] = 33.333
    assert infer_schema(df)["bmi"].precision == 3
    df = real("MASS/Pima.tr")  # 200 values: 2 may carry more decimals
    df.loc[[0, 1], "bmi"] = [33.333, 27.25]
    assert (infer_schema(df)["bmi"].precision, infer_schema(df)["bmi"].max_decimals) == (1, 3)
    df.loc[2, "bmi"] = 30.05
    assert infer_schema(df)["bmi"].precision == 2


# -- datetime resolution -------------------------------------------------------------------------
def test_datetime_resolution_is_the_coarsest_that_fits_every_value():
    df = real("survival/jasa")
    accept = pd.to_datetime(df["accept.dt"])
    df["seen"] = accept + pd.to_timedelta(df["futime"] * 61, unit="s")
    df["lab"] = accept + pd.to_timedelta(df["futime"] * 1.5, unit="s")
    s = infer_schema(df)
    assert s["accept.dt"].resolution == "day" and s["tx.date"].resolution == "day"
    assert s["seen"].resolution == "second" and s["lab"].resolution is None
    assert s["age"].resolution is None


def test_old_schema_files_without_the_new_fields_still_load(tmp_path):
    df = real("survival/flchain", 2000)
    df["accept"] = (
        pd.to_datetime(real("survival/jasa")["accept.dt"])
        .sample(2000, replace=True, random_state=0)
        .to_numpy()
    )
    s = infer_schema(df)
    assert s["accept"].resolution == "day" and s["kappa"].max_decimals is not None
    s.save(tmp_path / "new.json")
    assert Schema.load(tmp_path / "new.json") == s
    raw = s.to_dict()
    for c in raw["columns"]:
        del c["resolution"], c["max_decimals"]
    (tmp_path / "old.json").write_text(json.dumps(raw), encoding="utf-8")
    old = Schema.load(tmp_path / "old.json")
    assert old["accept"].resolution is None and old["kappa"].max_decimals is None
    assert old["kappa"].precision == s["kappa"].precision
    raw["columns"][0]["resolution"] = "hour"
    (tmp_path / "bad.json").write_text(json.dumps(raw), encoding="utf-8")
    with pytest.raises(DataError, match="bad.json .*resolution must be one of day, second"):
        Schema.load(tmp_path / "bad.json")
