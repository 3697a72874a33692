"""The command line with databases: fit --omop / --meds, sample --to, and their bad input."""

from __future__ import annotations

import json

import pytest
import sqlalchemy as sa
from typer.testing import CliRunner

from healthsynth.cli import app
from healthsynth.data import export_dataset_as
from healthsynth.data._db import open_database
from healthsynth.knowledge import load_code_map
from tests.data import omop_cdm as cdm

pytest.importorskip("duckdb")
runner = CliRunner()


def _ok(args: list[str]) -> str:
    res = runner.invoke(app, args)
    assert res.exit_code == 0, res.output
    return " ".join(res.output.split())


def _user_error(args: list[str]) -> str:
    res = runner.invoke(app, args)
    assert res.exit_code == 2, res.output
    text = " ".join(res.output.split())
    assert "Traceback" not in text and text.startswith("error:"), text
    return text


@pytest.fixture(scope="module")
def source(tmp_path_factory):
    """The real NAFLD cohort (150 patients) as a CDM in a DuckDB file."""
    folder = tmp_path_factory.mktemp("cdm")
    url = f"duckdb:///{folder / 'cdm.duckdb'}"
    cdm.load_cdm(cdm.nafld(150), url, "cdm", cdm.concept_map(folder))
    return url


@pytest.fixture(scope="module")
def model(source, tmp_path_factory):
    # calibration is tested elsewhere; here reading the CDM and writing OMOP back
    out = tmp_path_factory.mktemp("m") / "model"
    text = _ok(
        ["fit", "--omop", source, "--omop-schema", "cdm", "--domains", "condition,measurement",
         "--max-patients", "120", "--epochs", "1", "--no-calibrate", "--out", str(out)]
    )  # fmt: skip
    assert "read 120 persons" in text and "condition_occurrence, measurement" in text
    assert "fitted timeline-lm on 120 patients" in text
    return out


def test_fit_from_omop_keeps_the_concept_ids_in_the_model(model):
    saved = json.loads((model / "code_map.json").read_text())
    by_item = {(e["table"], e["item"]): e for e in saved["entries"]}
    assert by_item[("condition_occurrence", "201826")]["concept_id"] == 201826
    assert by_item[("condition_occurrence", "201826")]["code"] == "E11.9"
    assert by_item[("measurement", "3027114")]["unit"] == "mg/dL"


def test_sample_to_a_database_and_refuse_a_schema_with_data(model, tmp_path):
    url = f"duckdb:///{tmp_path / 'syn.duckdb'}"
    text = _ok(["sample", str(model), "-n", "30", "--seed", "1", "--to", url,
                "--omop-schema", "synthetic"])  # fmt: skip
    assert "wrote 30 patients into schema 'synthetic'" in text
    with open_database(url) as db:
        q = db.qualify
        assert db.rows(f"SELECT count(*) FROM {q('synthetic', 'person')}")[0][0] == 30
        chol = db.rows(
            f"SELECT DISTINCT measurement_concept_id FROM {q('synthetic', 'measurement')} "
            "WHERE measurement_source_value = '2093-3'"
        )
        run = json.loads(
            db.rows(f"SELECT source_description FROM {q('synthetic', 'cdm_source')}")[0][0]
        )
    assert chol == [(3027114,)]
    assert run["n"] == 30 and run["seed"] == 1 and run["format"] == "omop"
    err = _user_error(["sample", str(model), "-n", "5", "--to", url, "--omop-schema", "synthetic"])
    assert "already holds tables" in err and "--replace" in err
    _ok(["sample", str(model), "-n", "5", "--to", url, "--omop-schema", "synthetic", "--replace"])
    with open_database(url) as db:
        assert db.rows(f"SELECT count(*) FROM {db.qualify('synthetic', 'person')}")[0][0] == 5


def test_sample_into_postgresql(model, postgres_url):
    schema = cdm.new_schema()
    try:
        text = _ok(["sample", str(model), "-n", "12", "--to", postgres_url,
                    "--omop-schema", schema])  # fmt: skip
        assert "wrote 12 patients" in text
        assert sa.make_url(postgres_url).password not in text and "***" in text
        with open_database(postgres_url) as db:
            assert cdm.referential_checks(db, schema) == {
                "orphans": 0,
                "outside_period": 0,
                "after_death": 0,
            }
    finally:
        cdm.drop_schema(postgres_url, schema)


def test_wrong_password_at_the_command_line(postgres_url, tmp_path):
    bad = sa.make_url(postgres_url).set(password="Wrong-Pass-77")
    url = bad.render_as_string(hide_password=False)
    err = _user_error(["fit", "--omop", url, "--out", str(tmp_path / "m")])
    assert "Wrong-Pass-77" not in err and "login was refused" in err
    assert not (tmp_path / "m").exists()


def test_fit_from_meds(tmp_path):
    folder = export_dataset_as(
        cdm.nafld(80), tmp_path / "meds", fmt="meds", code_map=load_code_map("nafld")
    )
    # calibration is tested elsewhere; here only reading MEDS and the code mapping
    flags = ["--epochs", "1", "--no-calibrate", "--out", str(tmp_path / "m")]
    text = _ok(["fit", "--meds", str(folder), *flags])
    assert "from the MEDS dataset" in text and "fitted timeline-lm" in text
    saved = json.loads((tmp_path / "m" / "code_map.json").read_text())
    assert any(e["item"] == "ICD10CM/E11.9" for e in saved["entries"])


@pytest.mark.parametrize(
    "args, message",
    [
        (["--omop", "duckdb:///x.duckdb", "--table", "p=a.csv"], "either --omop or a data file"),
        (["--omop", "duckdb:///x.duckdb", "--meds", "m"], "either --omop or --meds"),
        (["--domains", "condition"], "--domains goes with --omop or --meds"),
        (["--meds", "m", "--omop-schema", "cdm"], "--omop-schema goes with --omop"),
        (["--omop", "duckdb:///x.duckdb", "--key", "id"], "--key does not apply to the OMOP"),
        (["--omop", "duckdb:///x.duckdb", "--code-map", "nafld"], "--code-map does not apply"),
        (["--omop", "duckdb:///x.duckdb", "--generator", "marginals"], "learns tables"),
        (["--omop", "mysql://u:Secret1@h/d"], "is for 'mysql'"),
    ],
)
def test_fit_source_flags_that_do_not_fit(args, message, tmp_path):
    err = _user_error(["fit", *args, "--out", str(tmp_path / "m")])
    assert message in err and "Secret1" not in err


def test_sample_to_flags_that_do_not_fit(model, tmp_path):
    url = f"duckdb:///{tmp_path / 'x.duckdb'}"
    assert "either --output or --to" in _user_error(
        ["sample", str(model), "-n", "3", "--to", url, "-o", str(tmp_path / "o")]
    )
    assert "--format csv does not apply" in _user_error(
        ["sample", str(model), "-n", "3", "--to", url, "--format", "csv"]
    )
    assert "go with --to URL" in _user_error(["sample", str(model), "-n", "3", "--replace"])
    assert "give the output with --output" in _user_error(["sample", str(model), "-n", "3"])
    assert not (tmp_path / "x.duckdb").exists()
