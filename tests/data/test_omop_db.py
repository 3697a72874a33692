"""OMOP CDM databases: the real NAFLD cohort loaded into PostgreSQL and DuckDB, read back, learned
from, and synthetic patients written back into a new schema.

PostgreSQL comes from ``scripts/postgres.sh`` (``.ci/run`` starts it); without it these tests
skip, and in CI (``HEALTHSYNTH_REQUIRE_EXTRAS=1``) they fail.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest

from healthsynth.data import export_dataset_as, read_omop, write_omop
from healthsynth.data._db import open_database
from healthsynth.data._omop import OMOP_TABLES
from healthsynth.data._omop_cdm import NOT_NULL, create_table_sql
from healthsynth.knowledge import CodeMap
from tests.data import omop_cdm as cdm

pytest.importorskip("sqlalchemy")
pytest.importorskip("duckdb")


@pytest.fixture(scope="module")
def cohort():
    return cdm.nafld(200)


@pytest.fixture(scope="module")
def code_map(tmp_path_factory):
    return cdm.concept_map(tmp_path_factory.mktemp("map"))


@pytest.fixture(scope="module", params=["postgresql", "duckdb"])
def source(request, cohort, code_map, tmp_path_factory):
    """(url, schema) of the cohort as a CDM, in each database."""
    if request.param == "postgresql":
        url = request.getfixturevalue("postgres_url")
        schema = cdm.new_schema()
        cdm.load_cdm(cohort, url, schema, code_map)
        yield url, schema
        cdm.drop_schema(url, schema)
    else:
        path = tmp_path_factory.mktemp("duck") / "cdm.duckdb"
        url = f"duckdb:///{path}"
        cdm.load_cdm(cohort, url, "cdm", code_map)
        yield url, "cdm"


def test_database_read_equals_the_csv_read_data(source, cohort, code_map):
    url, schema = source
    got = read_omop(url, schema=schema, index_date=cdm.INDEX_DATE)
    ds = got.dataset
    assert ds.n_patients == cohort.n_patients
    assert set(ds.event_tables) == {"condition_occurrence", "measurement"}
    # every event comes back: same patient, day, item and value
    a = cdm.as_csv_naming(ds, code_map)
    b = cdm.sorted_events(cohort.events()[["id", "days", "item", "value"]])
    assert len(a) == len(b) == 2 * len(a) - len(b)
    assert (a["id"].to_numpy() == b["id"].to_numpy()).all()
    assert (a["days"].to_numpy() == b["days"].to_numpy()).all()
    assert (a["item"].to_numpy() == b["item"].to_numpy()).all()
    np.testing.assert_allclose(a["value"].to_numpy(float), b["value"].to_numpy(float))
    # sex, age, follow-up and death per patient
    m = ds.patient_table.merge(cohort.patient_table, left_on="person_id", right_on="id")
    assert len(m) == cohort.n_patients
    assert (m["sex_x"] == m["sex_y"]).all()
    assert (m["age_x"] == m["age_y"]).all()
    assert (m["follow_up_days"] == m["futime"]).all()
    assert (m["died"] == m["status"]).all()
    assert got.record["events"]["condition_occurrence"]["read"] == len(cohort.tables["events"])


def test_concept_ids_are_learned_with_names_and_source_values(source):
    url, schema = source
    concepts = read_omop(url, schema=schema).concepts.set_index("item")
    diabetes = concepts.loc["201826"]
    assert diabetes["concept_id"] == 201826
    assert diabetes["source_value"] == "E11.9"
    assert diabetes["description"] == "Type 2 diabetes mellitus"
    assert diabetes["table"] == "condition_occurrence" and diabetes["domain"] == "condition"
    chol = concepts.loc["3027114"]
    assert chol["unit"] == "mg/dL" and chol["code"] == "2093-3" and chol["vocabulary"] == "LOINC"
    # items without a concept ID are keyed by their source value
    stroke = concepts.loc["I63.9"]
    assert pd.isna(stroke["concept_id"]) and stroke["domain"] == "condition"
    assert concepts.loc["fib4", "domain"] == "measurement"


def test_learned_concept_ids_reach_the_parquet_export(source, tmp_path):
    url, schema = source
    got = read_omop(url, schema=schema, max_patients=60, seed=1)
    learned = CodeMap.from_frame(got.concepts, name="omop")
    assert learned.get("condition_occurrence", "201826").concept_id == 201826
    out = export_dataset_as(got.dataset, tmp_path / "cdm", fmt="omop", code_map=learned)
    cond = pq.read_table(out / "condition_occurrence.parquet").to_pandas()
    by_source = cond.groupby("condition_source_value")["condition_concept_id"].unique()
    assert list(by_source["E11.9"]) == [201826]
    assert list(by_source["I63.9"]) == [0]
    meas = pq.read_table(out / "measurement.parquet").to_pandas()
    chol = meas[meas["measurement_source_value"] == "2093-3"]
    assert len(chol) and (chol["measurement_concept_id"] == 3027114).all()
    person = pq.read_table(out / "person.parquet").to_pandas()
    assert set(person["gender_concept_id"]) == {8507, 8532}


def test_max_patients_reads_a_seeded_subset_and_domains_choose_tables(source):
    url, schema = source
    a = read_omop(url, schema=schema, max_patients=30, seed=3, domains=["measurement"])
    b = read_omop(url, schema=schema, max_patients=30, seed=3, domains="measurement")
    assert a.dataset.n_patients == 30
    assert a.dataset.event_tables == ["measurement"]
    assert a.dataset.patient_table.equals(b.dataset.patient_table)
    ids = set(a.dataset.patient_table["person_id"])
    assert set(a.dataset.tables["measurement"]["person_id"]) <= ids


def test_default_index_is_each_persons_observation_start(source):
    url, schema = source
    ds = read_omop(url, schema=schema).dataset
    first = ds.events().groupby("person_id")["days"].min()
    # the export starts the observation period at the earlier of the index date and the first
    # event, so with day 0 at its start no event is before day 0 and some are on it
    assert (first >= 0).all() and (first == 0).any()


def test_cdm_ddl_matches_the_v54_not_null_columns():
    from tests.data.test_export import OMOP_SPEC

    for table, spec in OMOP_SPEC.items():
        assert [c for c, _ in OMOP_TABLES[table]] == [c for c, _, _ in spec]
        assert NOT_NULL[table] == {c for c, _, required in spec if required}, table
    sql = create_table_sql('"s"."measurement"', "measurement", dialect="postgresql")
    assert '"value_as_number" numeric NULL' in sql
    assert '"measurement_time" varchar(10) NULL' in sql
    assert 'PRIMARY KEY ("measurement_id")' in sql


def test_written_tables_have_the_ddl_types(source):
    url, schema = source
    with open_database(url) as db:
        rows = db.rows(
            "SELECT table_name, column_name, data_type, is_nullable FROM "
            f"information_schema.columns WHERE table_schema = '{schema}'{db._in_catalog()} "
            "AND table_name = 'measurement' ORDER BY ordinal_position"
        )
    cols = {r[1]: (r[2].lower(), r[3]) for r in rows}
    assert [r[1] for r in rows] == [c for c, _ in OMOP_TABLES["measurement"]]
    assert cols["measurement_id"] == ("integer", "NO")
    assert cols["measurement_date"] == ("date", "NO")
    assert cols["measurement_datetime"][0].startswith("timestamp")
    assert cols["value_as_number"][0] in ("numeric", "double")
    assert cols["measurement_source_value"][0] in ("character varying", "varchar")


def test_round_trip_fit_from_the_database_and_sample_into_a_new_schema(postgres_url, code_map):
    """Fit timeline-lm from PostgreSQL, sample into a new schema, and check the synthetic CDM."""
    from healthsynth.generators.timeline_lm import TimelineLM

    url = postgres_url
    src, out = cdm.new_schema(), cdm.new_schema()
    cdm.load_cdm(cdm.nafld(150), url, src, code_map)
    try:
        got = read_omop(url, schema=src)
        learned = CodeMap.from_frame(got.concepts, name="omop")
        gen = TimelineLM(
            epochs=2, n_embd=32, n_layer=1, n_head=2, code_map=learned, seed=0, max_tokens=256
        ).fit(got.dataset)
        syn = gen.sample(60, seed=1)
        counts = write_omop(syn, url, schema=out, code_map=gen.code_map_)
        assert counts["person"] == 60
        with open_database(url) as db:
            check = cdm.referential_checks(db, out)
            concepts = dict(
                db.rows(
                    f"SELECT measurement_source_value, min(measurement_concept_id) FROM "
                    f"{db.qualify(out, 'measurement')} GROUP BY 1 HAVING "
                    "min(measurement_concept_id) = max(measurement_concept_id)"
                )
            )
            n_meas = db.rows(f"SELECT count(*) FROM {db.qualify(out, 'measurement')}")[0][0]
        assert check == {"orphans": 0, "outside_period": 0, "after_death": 0}
        assert n_meas > 0
        assert concepts.get("2093-3") == 3027114
        assert concepts.get("fib4", 0) == 0
    finally:
        cdm.drop_schema(url, src)
        cdm.drop_schema(url, out)


def test_timeline_evaluation_of_database_data_matches_the_csv_data(source, cohort, code_map):
    """Scored against the CSV-read cohort, the database-read cohort is a perfect copy."""
    from healthsynth.evaluate.timeline import evaluate_timelines

    url, schema = source
    ds = read_omop(url, schema=schema, index_date=cdm.INDEX_DATE).dataset
    real, from_db = cdm.csv_views(cohort, ds, code_map)
    metrics = ["event_prevalence_r2", "cooccurrence_r2", "events_per_patient", "event_order"]
    csv_scores = evaluate_timelines(real=real, synthetic=real, metrics=metrics)["records"]
    db_scores = evaluate_timelines(real=real, synthetic=from_db, metrics=metrics)["records"]
    values = {(r["name"], r.get("subgroup")): r["value"] for r in db_scores}
    assert values
    for r in csv_scores:
        assert values[(r["name"], r.get("subgroup"))] == pytest.approx(r["value"], abs=1e-9)
