"""Standard exports of a real multi-table Dataset, read back by each format's own tools.

OMOP CDM v5.4 tables are loaded into DuckDB and checked against the specification's columns
and types; MEDS files are validated with the ``meds`` package's schemas; FHIR Bundles are parsed
back with ``fhir.resources``.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import sys
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from healthsynth.data import Dataset, export_dataset_as, load_timelines, read_table
from healthsynth.errors import DataError, MissingExtraError, ParameterError
from healthsynth.knowledge import load_code_map
from healthsynth.knowledge._icd10cm import _cm

duckdb = pytest.importorskip("duckdb")

INDEX = pd.Timestamp("2020-01-01")

# OMOP CDM v5.4 (OHDSI DDL): column, type and NOT NULL, for the five exported tables.
# integer -> BIGINT, date -> DATE, datetime -> TIMESTAMP, varchar -> VARCHAR, NUMERIC -> DOUBLE
INT, D, T, S, F = "BIGINT", "DATE", "TIMESTAMP", "VARCHAR", "DOUBLE"
OMOP_SPEC: dict[str, list[tuple[str, str, bool]]] = {
    "person": [
        ("person_id", INT, True),
        ("gender_concept_id", INT, True),
        ("year_of_birth", INT, True),
        ("month_of_birth", INT, False),
        ("day_of_birth", INT, False),
        ("birth_datetime", T, False),
        ("race_concept_id", INT, True),
        ("ethnicity_concept_id", INT, True),
        ("location_id", INT, False),
        ("provider_id", INT, False),
        ("care_site_id", INT, False),
        ("person_source_value", S, False),
        ("gender_source_value", S, False),
        ("gender_source_concept_id", INT, False),
        ("race_source_value", S, False),
        ("race_source_concept_id", INT, False),
        ("ethnicity_source_value", S, False),
        ("ethnicity_source_concept_id", INT, False),
    ],
    "observation_period": [
        ("observation_period_id", INT, True),
        ("person_id", INT, True),
        ("observation_period_start_date", D, True),
        ("observation_period_end_date", D, True),
        ("period_type_concept_id", INT, True),
    ],
    "condition_occurrence": [
        ("condition_occurrence_id", INT, True),
        ("person_id", INT, True),
        ("condition_concept_id", INT, True),
        ("condition_start_date", D, True),
        ("condition_start_datetime", T, False),
        ("condition_end_date", D, False),
        ("condition_end_datetime", T, False),
        ("condition_type_concept_id", INT, True),
        ("condition_status_concept_id", INT, False),
        ("stop_reason", S, False),
        ("provider_id", INT, False),
        ("visit_occurrence_id", INT, False),
        ("visit_detail_id", INT, False),
        ("condition_source_value", S, False),
        ("condition_source_concept_id", INT, False),
        ("condition_status_source_value", S, False),
    ],
    "measurement": [
        ("measurement_id", INT, True),
        ("person_id", INT, True),
        ("measurement_concept_id", INT, True),
        ("measurement_date", D, True),
        ("measurement_datetime", T, False),
        ("measurement_time", S, False),
        ("measurement_type_concept_id", INT, True),
        ("operator_concept_id", INT, False),
        ("value_as_number", F, False),
        ("value_as_concept_id", INT, False),
        ("unit_concept_id", INT, False),
        ("range_low", F, False),
        ("range_high", F, False),
        ("provider_id", INT, False),
        ("visit_occurrence_id", INT, False),
        ("visit_detail_id", INT, False),
        ("measurement_source_value", S, False),
        ("measurement_source_concept_id", INT, False),
        ("unit_source_value", S, False),
        ("unit_source_concept_id", INT, False),
        ("value_source_value", S, False),
        ("measurement_event_id", INT, False),
        ("meas_event_field_concept_id", INT, False),
    ],
    "death": [
        ("person_id", INT, True),
        ("death_date", D, True),
        ("death_datetime", T, False),
        ("death_type_concept_id", INT, False),
        ("cause_concept_id", INT, False),
        ("cause_source_value", S, False),
        ("cause_source_concept_id", INT, False),
    ],
}

_CACHE: dict[str, Dataset] = {}


def timelines(name: str, n: int) -> Dataset:
    if (name, n) not in _CACHE:
        _CACHE[(name, n)] = load_timelines(name, max_patients=n, seed=0)
    return _CACHE[(name, n)]


def connect(folder: Path):
    con = duckdb.connect()
    for table in OMOP_SPEC:
        path = (folder / f"{table}.parquet").as_posix()
        con.execute(f"CREATE VIEW {table} AS SELECT * FROM read_parquet('{path}')")
    return con


@pytest.fixture(scope="module")
def nafld():
    return timelines("nafld", 300)


@pytest.fixture(scope="module")
def omop(nafld, tmp_path_factory):
    folder = tmp_path_factory.mktemp("omop") / "cdm"
    out = export_dataset_as(nafld, folder, fmt="omop", code_map=load_code_map("nafld"))
    assert out == folder
    con = connect(folder)
    yield con
    con.close()


# -- OMOP -------------------------------------------------------------------------------------


@pytest.mark.parametrize("table", list(OMOP_SPEC))
def test_omop_tables_have_the_v54_columns_and_types(omop, table):
    got = [(name, kind) for name, kind, *_ in omop.execute(f"DESCRIBE {table}").fetchall()]
    assert got == [(name, kind) for name, kind, _ in OMOP_SPEC[table]]
    for name, _, required in OMOP_SPEC[table]:
        if required:
            nulls = omop.execute(f"SELECT count(*) FROM {table} WHERE {name} IS NULL").fetchone()
            assert nulls == (0,), f"{table}.{name} is NOT NULL in the spec"


def test_omop_counts_match_the_dataset(nafld, omop):
    def count(sql):
        return omop.execute(sql).fetchone()[0]

    events = nafld.events()
    assert count("SELECT count(*) FROM person") == nafld.n_patients == 300
    assert count("SELECT count(DISTINCT person_id) FROM person") == 300
    assert count("SELECT count(*) FROM observation_period") == 300
    assert count("SELECT count(*) FROM death") == int(nafld.died().sum()) > 0
    # nafld: every comorbidity is an ICD-10-CM code, every lab has a value
    assert count("SELECT count(*) FROM condition_occurrence") == len(nafld.tables["events"])
    assert count("SELECT count(*) FROM measurement") == len(nafld.tables["labs"])
    assert len(events) == len(nafld.tables["events"]) + len(nafld.tables["labs"])
    assert count("SELECT count(DISTINCT condition_occurrence_id) FROM condition_occurrence") == (
        len(nafld.tables["events"])
    )


def test_omop_conditions_carry_icd10cm_codes(nafld, omop):
    cm, code_map = _cm(), load_code_map("nafld")
    rows = omop.execute(
        "SELECT condition_source_value, count(*) FROM condition_occurrence GROUP BY 1"
    ).fetchall()
    assert rows and all(cm.is_valid_item(code) for code, _ in rows)
    expected = nafld.tables["events"]["event"].map(lambda i: code_map.get("events", i).code)
    assert dict(rows) == expected.value_counts().to_dict()
    assert omop.execute(
        "SELECT count(*) FROM condition_occurrence WHERE condition_concept_id <> 0 "
        "OR condition_source_concept_id <> 0"
    ).fetchone() == (0,)


def test_omop_dates_are_index_date_plus_days(nafld, omop):
    got = omop.execute(
        "SELECT person_id, condition_start_date, condition_source_value FROM condition_occurrence"
    ).df()
    ev = nafld.tables["events"]
    code_map = load_code_map("nafld")
    want = pd.DataFrame(
        {
            "person_id": ev["id"],
            "condition_start_date": (INDEX + pd.to_timedelta(ev["days"], unit="D")).dt.date,
            "condition_source_value": ev["event"].map(lambda i: code_map.get("events", i).code),
        }
    )
    key = list(want.columns)
    got["condition_start_date"] = pd.to_datetime(got["condition_start_date"]).dt.date
    pd.testing.assert_frame_equal(
        got.sort_values(key).reset_index(drop=True),
        want.sort_values(key).reset_index(drop=True),
        check_dtype=False,
    )


def test_omop_measurements_keep_values_units_and_unmapped_items(nafld, omop):
    rows = omop.execute(
        "SELECT measurement_source_value, unit_source_value, count(*), sum(value_as_number) "
        "FROM measurement GROUP BY 1, 2"
    ).fetchall()
    by_code = {code: (unit, n, total) for code, unit, n, total in rows}
    labs = nafld.tables["labs"]
    chol = labs[labs["test"] == "chol"]
    assert by_code["2093-3"][:2] == ("mg/dL", len(chol))
    assert by_code["2093-3"][2] == pytest.approx(chol["value"].sum())
    fib4 = labs[labs["test"] == "fib4"]
    assert len(fib4) > 0  # unmapped by the packaged map, kept under its own name
    assert by_code["fib4"][:2] == (None, len(fib4))
    assert omop.execute(
        "SELECT count(*) FROM measurement WHERE unit_source_value IS NOT NULL "
        "AND unit_concept_id IS NULL"
    ).fetchone() == (0,)


def test_omop_persons_periods_and_deaths(nafld, omop):
    p = omop.execute(
        "SELECT person_id, year_of_birth, gender_source_value, person_source_value FROM person"
    ).df()
    pt = nafld.patient_table.set_index("id")
    assert set(p["person_id"]) == set(pt.index)
    p = p.set_index("person_id").loc[pt.index]
    assert ((INDEX.year - pt["age"] - p["year_of_birth"]).isin([0, 1])).all()
    assert (p["gender_source_value"] == pt["sex"]).all()
    assert (p["person_source_value"] == pt.index.astype(str)).all()
    # every event and death lies in the person's observation period, which starts by the index
    outside = """
        SELECT count(*) FROM ({events}) e JOIN observation_period o USING (person_id)
        WHERE e.d < o.observation_period_start_date OR e.d > o.observation_period_end_date"""
    for events in (
        "SELECT person_id, condition_start_date AS d FROM condition_occurrence",
        "SELECT person_id, measurement_date AS d FROM measurement",
        "SELECT person_id, death_date AS d FROM death",
    ):
        assert omop.execute(outside.format(events=events)).fetchone() == (0,)
    assert (
        omop.execute(
            "SELECT max(observation_period_start_date) FROM observation_period"
        ).fetchone()[0]
        <= INDEX.date()
    )
    deaths = omop.execute("SELECT person_id, death_date FROM death").df().set_index("person_id")
    died = pt[nafld.died()]
    assert set(deaths.index) == set(died.index)
    want = (INDEX + pd.to_timedelta(died["futime"], unit="D")).dt.date
    assert (pd.to_datetime(deaths.loc[died.index, "death_date"]).dt.date == want).all()


def test_omop_join_query(nafld, omop):
    got = omop.execute(
        """
        SELECT count(DISTINCT p.person_id) FROM person p
        JOIN condition_occurrence c ON c.person_id = p.person_id
        JOIN measurement m ON m.person_id = p.person_id
        WHERE c.condition_source_value = 'E11.9' AND m.measurement_source_value = '2093-3'
        """
    ).fetchone()[0]
    ev = nafld.tables["events"]
    labs = nafld.tables["labs"]
    want = set(ev.loc[ev["event"] == "diabetes", "id"]) & set(
        labs.loc[labs["test"] == "chol", "id"]
    )
    assert got == len(want) > 0


def test_omop_wide_table_pbcseq(tmp_path):
    ds = timelines("pbcseq", 60)
    folder = export_dataset_as(ds, tmp_path / "pbc", fmt="omop", code_map=load_code_map("pbcseq"))
    con = connect(folder)
    count = con.execute("SELECT count(*) FROM measurement").fetchone()[0]
    values = ds.tables["visits"].drop(columns=["id", "day"])
    assert count == int(values.notna().sum().sum()) == len(ds.events())
    assert con.execute("SELECT count(*) FROM condition_occurrence").fetchone() == (0,)
    assert con.execute("SELECT count(*) FROM death").fetchone()[0] == int(
        (ds.patient_table["status"] == 2).sum()
    )
    sources = dict(
        con.execute(
            "SELECT measurement_source_value, count(*) FROM measurement GROUP BY 1"
        ).fetchall()
    )
    assert sources["1975-2"] == int(values["bili"].notna().sum())  # bilirubin, LOINC
    assert sources["ascites"] == int(values["ascites"].notna().sum())  # unmapped: item name
    sexes = {r[0] for r in con.execute("SELECT gender_source_value FROM person").fetchall()}
    assert sexes <= {"f", "m"}
    con.close()


def test_omop_times_as_dates_give_the_same_tables(nafld, tmp_path):
    small = nafld.subset(nafld.patient_table["id"].iloc[:40])
    tables = dict(small.tables)
    for name in small.event_tables:
        df = tables[name].copy()
        df["days"] = INDEX + pd.to_timedelta(df["days"], unit="D")
        tables[name] = df
    patients = tables["patients"].copy()
    patients["futime"] = INDEX + pd.to_timedelta(patients["futime"], unit="D")
    tables["patients"] = patients
    as_dates = Dataset.from_tables(
        tables, key="id", time="days", end="futime", death="status", sex="sex", age="age"
    )
    assert as_dates.times_are_dates
    code_map = load_code_map("nafld")
    a = export_dataset_as(small, tmp_path / "days", fmt="omop", code_map=code_map)
    b = export_dataset_as(as_dates, tmp_path / "dates", fmt="omop", code_map=code_map)
    for table in ("condition_occurrence", "measurement", "death", "person"):
        pd.testing.assert_frame_equal(
            pd.read_parquet(a / f"{table}.parquet"), pd.read_parquet(b / f"{table}.parquet")
        )
    # with dates there is no index date in the data: the period starts at the first event
    start = pd.read_parquet(b / "observation_period.parquet")["observation_period_start_date"]
    first = pd.concat(
        [as_dates.tables[n].groupby("id")["days"].min() for n in as_dates.event_tables], axis=1
    ).min(axis=1)
    assert len(start) == 40 and (start.to_numpy() >= first.min().date()).all()


def test_omop_without_code_map_and_with_text_keys(nafld, tmp_path):
    small = nafld.subset(nafld.patient_table["id"].iloc[:30])
    tables = {n: df.assign(id="p-" + df["id"].astype(str)) for n, df in small.tables.items()}
    ds = Dataset.from_tables(tables, key="id", time="days", sex="sex", age="age")
    folder = export_dataset_as(ds, tmp_path / "plain", fmt="omop", index_date="2001-06-30")
    person = pd.read_parquet(folder / "person.parquet")
    assert person["person_id"].tolist() == list(range(1, 31))
    assert person["person_source_value"].tolist() == tables["patients"]["id"].tolist()
    cond = pd.read_parquet(folder / "condition_occurrence.parquet")
    meas = pd.read_parquet(folder / "measurement.parquet")
    # no mapping: events without a value are conditions, labs with values measurements
    assert sorted(cond["condition_source_value"]) == sorted(tables["events"]["event"])
    assert sorted(meas["measurement_source_value"]) == sorted(tables["labs"]["test"])
    assert meas["unit_source_value"].isna().all()
    first = tables["events"].iloc[0]
    got = cond.loc[cond["person_id"] == 1, "condition_start_date"].min()
    days = tables["events"].loc[tables["events"]["id"] == first["id"], "days"].min()
    assert got == (pd.Timestamp("2001-06-30") + pd.Timedelta(days=int(days))).date()
    assert len(pd.read_parquet(folder / "death.parquet")) == 0  # no death column given


# -- the output folder --------------------------------------------------------------------------


def test_export_replaces_an_earlier_export_and_refuses_other_folders(nafld, tmp_path):
    small = nafld.subset(nafld.patient_table["id"].iloc[:10])
    folder = tmp_path / "out"
    export_dataset_as(small, folder, fmt="omop")
    export_dataset_as(small, folder, fmt="omop", code_map=load_code_map("nafld"))
    assert sorted(p.name for p in folder.iterdir()) == sorted(
        [".healthsynth-manifest.json"] + [f"{t}.parquet" for t in OMOP_SPEC]
    )
    sources = pd.read_parquet(folder / "condition_occurrence.parquet")["condition_source_value"]
    assert len(sources) and all(_cm().is_valid_item(s) for s in sources)  # the second export
    other = tmp_path / "other"
    other.mkdir()
    (other / "notes.txt").write_text("keep me")
    with pytest.raises(ParameterError, match="holds 'notes.txt', which healthsynth did not write"):
        export_dataset_as(small, other, fmt="omop")
    with pytest.raises(ParameterError, match="holds a healthsynth OMOP export, not a FHIR"):
        export_dataset_as(small, folder, fmt="fhir")
    assert (other / "notes.txt").read_text() == "keep me"
    (tmp_path / "file").write_text("x")
    with pytest.raises(ParameterError, match="is a file"):
        export_dataset_as(small, tmp_path / "file", fmt="meds")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["file", "other", "out"]


def test_failed_export_leaves_nothing_behind(nafld, tmp_path, monkeypatch):
    import healthsynth.data._omop as omop_module

    def broken(prepared, folder):
        (folder / "person.parquet").write_text("half")
        raise RuntimeError("disk full")

    monkeypatch.setattr(omop_module, "write_omop", broken)
    with pytest.raises(RuntimeError, match="disk full"):
        export_dataset_as(nafld, tmp_path / "cdm", fmt="omop")
    assert list(tmp_path.iterdir()) == []


def test_bad_parameters_are_clear_errors(nafld, tmp_path):
    small = nafld.subset(nafld.patient_table["id"].iloc[:5])
    with pytest.raises(ParameterError, match="fmt must be one of csv, parquet, omop"):
        export_dataset_as(small, tmp_path / "x", fmt="xlsx")
    with pytest.raises(ParameterError, match="index_date must be a date"):
        export_dataset_as(small, tmp_path / "x", fmt="omop", index_date="someday")
    with pytest.raises(ParameterError, match="code_map must have a get"):
        export_dataset_as(small, tmp_path / "x", fmt="omop", code_map=["chol"])
    with pytest.raises(ParameterError, match=r"code_map.get\('\w+', '\w+'\) returned str"):
        export_dataset_as(small, tmp_path / "x", fmt="omop", code_map={"chol": "2093-3"})
    with pytest.raises(ParameterError, match="must be a healthsynth.data.Dataset"):
        export_dataset_as(small.patient_table, tmp_path / "x", fmt="omop")
    tables = dict(small.tables)
    tables["labs"] = tables["labs"].assign(days=tables["labs"]["days"] * 10**6)
    far = Dataset.from_tables(tables, key="id", time="days")
    with pytest.raises(DataError, match="too far from the index date"):
        export_dataset_as(far, tmp_path / "x", fmt="omop")
    orphans = small.with_events(small.patient_table.iloc[:3], small.events())
    with pytest.raises(DataError, match="which is not in the patients table 'patients'"):
        export_dataset_as(orphans, tmp_path / "x", fmt="omop")
    assert not (tmp_path / "x").exists()


def test_csv_and_parquet_write_the_tables(nafld, tmp_path):
    small = nafld.subset(nafld.patient_table["id"].iloc[:20])
    for fmt in ("csv", "parquet"):
        folder = export_dataset_as(small, tmp_path / fmt, fmt=fmt)
        back = {n: read_table(folder / f"{n}.{fmt}") for n in small.tables}
        for n, df in small.tables.items():
            pd.testing.assert_frame_equal(back[n], df, check_dtype=False)


@pytest.mark.parametrize(("fmt", "module"), [("meds", "meds"), ("fhir", "fhir.resources")])
def test_missing_library_names_the_extra(nafld, tmp_path, monkeypatch, fmt, module):
    monkeypatch.setitem(sys.modules, module, None)
    with pytest.raises(MissingExtraError, match=r"healthsynth\[timelines\]"):
        export_dataset_as(nafld, tmp_path / "x", fmt=fmt)
    assert not (tmp_path / "x").exists()


# -- MEDS ---------------------------------------------------------------------------------------


def test_meds_files_match_the_meds_schemas(nafld, tmp_path):
    meds = pytest.importorskip("meds")
    code_map = load_code_map("nafld")
    folder = export_dataset_as(nafld, tmp_path / "meds", fmt="meds", code_map=code_map)
    data = pq.read_table(folder / "data" / "train" / "0.parquet")
    meds.DataSchema.validate(data)
    assert data.schema.equals(meds.DataSchema.schema())
    codes = pq.read_table(folder / meds.code_metadata_filepath)
    meds.CodeMetadataSchema.validate(codes)
    splits = pq.read_table(folder / meds.subject_splits_filepath)
    meds.SubjectSplitSchema.validate(splits)
    meta = json.loads((folder / meds.dataset_metadata_filepath).read_text())
    meds.DatasetMetadataSchema.validate(meta)
    assert meta["meds_version"] == meds.__version__ and meta["etl_name"] == "healthsynth"

    df = data.to_pandas()
    events = nafld.events()
    n = nafld.n_patients
    code = df["code"]
    assert (code == "MEDS_DEATH").sum() == int(nafld.died().sum())
    assert (code == "MEDS_BIRTH").sum() == n  # every nafld patient has an age
    assert code.str.startswith("GENDER/").sum() == n
    assert set(code[code.str.startswith("GENDER/")]) == {"GENDER/female", "GENDER/male"}
    coded = code.str.startswith(("ICD10CM/", "LOINC/")) | code.str.startswith("labs//")
    assert coded.sum() == len(events)
    assert (code == "labs//fib4").sum() == int((events["item"] == "fib4").sum())
    assert (code == "ICD10CM/E11.9").sum() == int((events["item"] == "diabetes").sum())
    chol = df[code == "LOINC/2093-3"]
    want = events.loc[events["item"] == "chol", "value"]
    assert np.allclose(np.sort(chol["numeric_value"]), np.sort(want.astype(np.float32)))
    assert df.loc[code.str.startswith("GENDER/"), "time"].isna().all()
    assert set(df["code"]) <= set(codes.column("code").to_pylist())
    names = codes.column("code").to_pylist()
    desc = dict(zip(names, codes.column("description").to_pylist(), strict=True))
    assert desc["ICD10CM/E11.9"] == "Type 2 diabetes mellitus without complications"
    # one block per subject, sorted by time with static rows first
    assert df["subject_id"].is_monotonic_increasing
    for _, g in df.groupby("subject_id"):
        t = g["time"]
        static = t.isna().to_numpy()
        assert not (static[1:] & ~static[:-1]).any()
        assert t.dropna().is_monotonic_increasing
    assert set(splits.column("split").to_pylist()) == {"train"}
    assert splits.num_rows == n


# -- FHIR ---------------------------------------------------------------------------------------


def test_fhir_bundles_parse_back(tmp_path):
    pytest.importorskip("fhir.resources")
    from fhir.resources.R4B.bundle import Bundle

    ds = timelines("nafld", 300)
    ds = ds.subset(ds.patient_table["id"].iloc[:80])
    code_map = load_code_map("nafld")
    folder = export_dataset_as(ds, tmp_path / "fhir", fmt="fhir", code_map=code_map)
    files = sorted(f for f in os.listdir(folder) if not f.startswith(".healthsynth"))
    assert files == sorted(f"Patient-{i}.json" for i in ds.patient_table["id"])
    ev, labs = ds.tables["events"], ds.tables["labs"]
    died = dict(zip(ds.patient_table["id"], ds.died(), strict=True))
    seen_diabetes = False
    for row in ds.patient_table.itertuples():
        bundle = Bundle.model_validate_json((folder / f"Patient-{row.id}.json").read_text())
        assert bundle.type == "collection"
        kinds = pd.Series([e.resource.get_resource_type() for e in bundle.entry]).value_counts()
        assert kinds.get("Patient") == 1
        assert kinds.get("Condition", 0) == int((ev["id"] == row.id).sum())
        assert kinds.get("Observation", 0) == int((labs["id"] == row.id).sum())
        patient = bundle.entry[0].resource
        assert patient.gender == row.sex
        assert int(str(patient.birthDate)) in (2019 - row.age, 2020 - row.age)
        assert (patient.deceasedDateTime is not None) == died[row.id]
        patient_url = bundle.entry[0].fullUrl
        for entry in bundle.entry[1:]:
            r = entry.resource
            assert r.subject.reference == patient_url
            if r.get_resource_type() == "Observation":
                assert r.status == "final" and r.effectiveDateTime is not None
                if r.code.text == "chol":
                    assert r.code.coding[0].system == "http://loinc.org"
                    assert r.code.coding[0].code == "2093-3"
                    assert r.valueQuantity.unit == "mg/dL"
                if r.code.text == "fib4":
                    assert r.code.coding is None and r.valueQuantity.unit is None
            elif r.code.text == "diabetes":
                seen_diabetes = True
                coding = r.code.coding[0]
                assert coding.system == "http://hl7.org/fhir/sid/icd-10-cm"
                assert coding.code == "E11.9"
                assert coding.display == "Type 2 diabetes mellitus without complications"
                days = ev.loc[(ev["id"] == row.id) & (ev["event"] == "diabetes"), "days"]
                onsets = {str((INDEX + pd.Timedelta(days=int(d))).date()) for d in days}
                assert str(r.onsetDateTime) in onsets
    assert seen_diabetes


# -- fuzz: any dataset that builds exports, or fails with DataError ------------------------------


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    days=st.lists(
        st.one_of(
            st.integers(min_value=-(10**7), max_value=10**7),
            st.floats(min_value=-1e7, max_value=1e7),
        ),
        min_size=4,
        max_size=4,
    ),
    index=st.dates(min_value=dt.date(1, 1, 1), max_value=dt.date(9999, 12, 31)),
    fmt=st.sampled_from(["omop", "meds"]),
)
def test_fuzz_export_times(days, index, fmt):
    base = timelines("nafld", 300)
    small = base.subset(base.patient_table["id"].iloc[:3])
    tables = dict(small.tables)
    ev = tables["events"].head(4)
    tables["events"] = ev.assign(days=days[: len(ev)], id=small.patient_table["id"].iloc[0])
    ds = Dataset.from_tables(tables, key="id", time="days", end="futime", age="age")
    with tempfile.TemporaryDirectory() as tmp:
        try:
            folder = export_dataset_as(ds, Path(tmp) / "out", fmt=fmt, index_date=str(index))
        except DataError as e:
            assert "index date" in str(e)
            event("DataError")
            return
        event("exported")
        if fmt == "omop":
            cond = pd.read_parquet(folder / "condition_occurrence.parquet")
            assert len(cond) == len(tables["events"])
            start = pd.to_datetime(cond["condition_start_datetime"])
            want = pd.Timestamp(index).to_datetime64() + np.round(
                np.asarray(days[: len(ev)], float) * 86400
            ).astype("timedelta64[s]")
            assert sorted(start.to_numpy()) == sorted(want)
