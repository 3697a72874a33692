"""Bad input for the OMOP database reader and writer: one sentence, no password, nothing written."""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from healthsynth.data import read_omop, write_omop
from healthsynth.data._db import _Postgres, open_database
from healthsynth.errors import DatabaseError, DataError, ParameterError
from tests.data import omop_cdm as cdm

pytest.importorskip("duckdb")


@pytest.fixture(scope="module")
def small():
    return cdm.nafld(40)


def _with_password(url: str, password: str) -> str:
    return sa.make_url(url).set(password=password).render_as_string(hide_password=False)


def _one_sentence(message: str) -> None:
    assert "\n" not in message and message.strip()


def test_unreachable_database_names_the_host_without_the_password():
    url = "postgresql://someone:Sup3rSecret@127.0.0.1:1/cdm"
    with pytest.raises(DatabaseError) as e:
        read_omop(url)
    msg = str(e.value)
    _one_sentence(msg)
    assert "Sup3rSecret" not in msg and "127.0.0.1" in msg and "running" in msg
    assert e.value.__cause__ is None and e.value.__suppress_context__


def test_wrong_credentials_are_refused_and_never_echoed(postgres_url):
    bad = _with_password(postgres_url, "not-the-Password-42")
    real_password = sa.make_url(postgres_url).password
    with pytest.raises(DatabaseError) as e:
        read_omop(bad)
    msg = str(e.value)
    _one_sentence(msg)
    assert "not-the-Password-42" not in msg and real_password not in msg
    assert "login was refused" in msg and "***" in msg


def test_a_schema_without_cdm_tables(postgres_url, tmp_path):
    schema = cdm.new_schema()
    with open_database(postgres_url, write=True) as db:
        db.execute(f"CREATE SCHEMA {db.qualify(schema)}")
        db.execute(f"CREATE TABLE {db.qualify(schema, 'notes')} (x integer)")
    try:
        with pytest.raises(DatabaseError, match=r"not an OMOP CDM.*person.*notes"):
            read_omop(postgres_url, schema=schema)
    finally:
        cdm.drop_schema(postgres_url, schema)
    empty = tmp_path / "empty.duckdb"
    import duckdb

    duckdb.connect(str(empty)).close()
    with pytest.raises(DatabaseError, match="holds no tables"):
        read_omop(f"duckdb:///{empty}")


def test_no_events_in_the_chosen_domains(tmp_path, small, code_map_plain):
    url = f"duckdb:///{tmp_path / 'cdm.duckdb'}"
    write_omop(small, url, code_map=code_map_plain)
    # drug_exposure exists (the writer creates every table) but holds no rows
    with pytest.raises(DataError, match="no events .* in the domains drug, procedure"):
        read_omop(url, domains=["drug", "procedure"])


def test_a_domain_whose_table_is_missing_and_an_unknown_domain(tmp_path, small):
    url = f"duckdb:///{tmp_path / 'cdm.duckdb'}"
    write_omop(small, url)
    with open_database(url, write=True) as db:
        db.execute(f"DROP TABLE {db.qualify('main', 'observation')}")
    with pytest.raises(DatabaseError, match="has no observation table"):
        read_omop(url, domains=["observation"])
    with pytest.raises(ParameterError, match="unknown OMOP domain.*'labs'.*condition"):
        read_omop(url, domains=["labs"])


def test_non_utf8_source_values(postgres_url, small):
    """A SQL_ASCII database can hold bytes that are not UTF-8; reading them is one sentence."""
    name = "hs_ascii_" + cdm.new_schema()[4:]
    with open_database(postgres_url, write=True) as db:
        db.execute(
            f"CREATE DATABASE {name} ENCODING 'SQL_ASCII' TEMPLATE template0 LC_COLLATE 'C' "
            "LC_CTYPE 'C'"
        )
    url = sa.make_url(postgres_url).set(database=name).render_as_string(hide_password=False)
    try:
        write_omop(small, url, schema="cdm")
        with open_database(url, write=True) as db:
            db.execute(
                f"UPDATE {db.qualify('cdm', 'condition_occurrence')} SET "
                "condition_source_value = E'caf\\xe9' WHERE condition_occurrence_id = 1"
            )
        with pytest.raises(DataError) as e:
            read_omop(url, schema="cdm")
        msg = str(e.value)
        _one_sentence(msg)
        assert "condition_occurrence" in msg and "not valid UTF-8" in msg
        assert sa.make_url(postgres_url).password not in msg
    finally:
        with open_database(postgres_url, write=True) as db:
            db.execute(f"DROP DATABASE IF EXISTS {name}")


def test_a_schema_that_holds_data_is_refused_unless_replace(postgres_url, small):
    schema = cdm.new_schema()
    try:
        write_omop(small, postgres_url, schema=schema)
        with pytest.raises(DatabaseError, match=r"already holds tables: .*person \(40 rows\)"):
            write_omop(small.subset(small.patient_table["id"][:10]), postgres_url, schema=schema)
        with open_database(postgres_url) as db:
            assert db.rows(f"SELECT count(*) FROM {db.qualify(schema, 'person')}")[0][0] == 40
        counts = write_omop(
            small.subset(small.patient_table["id"][:10]), postgres_url, schema=schema, replace=True
        )
        assert counts["person"] == 10
        with open_database(postgres_url) as db:
            assert db.rows(f"SELECT count(*) FROM {db.qualify(schema, 'person')}")[0][0] == 10
    finally:
        cdm.drop_schema(postgres_url, schema)


def test_nothing_is_written_when_loading_fails(postgres_url, small, monkeypatch, tmp_path):
    """A failure after some tables were loaded leaves no schema, table or DuckDB file."""
    calls = []

    def load_then_fail(self, schema, table, data):
        calls.append(table)
        if len(calls) == 3:
            raise RuntimeError("disk full (simulated)")
        return original(self, schema, table, data)

    original = _Postgres.load
    monkeypatch.setattr(_Postgres, "load", load_then_fail)
    schema = cdm.new_schema()
    with pytest.raises(DatabaseError, match="nothing was written") as e:
        write_omop(small, postgres_url, schema=schema)
    assert sa.make_url(postgres_url).password not in str(e.value)
    assert len(calls) == 3
    with open_database(postgres_url) as db:
        assert not db.schema_exists(schema)

    from healthsynth.data._db import _DuckDB

    duck_calls = []
    duck_original = _DuckDB.load

    def duck_fail(self, schema, table, data):
        duck_calls.append(table)
        if len(duck_calls) == 2:
            raise RuntimeError("simulated")
        return duck_original(self, schema, table, data)

    monkeypatch.setattr(_DuckDB, "load", duck_fail)
    path = tmp_path / "new.duckdb"
    with pytest.raises(DatabaseError, match="nothing was written"):
        write_omop(small, f"duckdb:///{path}")
    assert not path.exists()


def test_values_the_cdm_cannot_hold(tmp_path, small):
    url = f"duckdb:///{tmp_path / 'x.duckdb'}"
    no_age = small.with_events(small.patient_table.assign(age=float("nan")), small.events())
    with pytest.raises(DataError, match="year_of_birth.*give every patient an age"):
        write_omop(no_age, url)
    long_item = small.events()
    long_item.loc[long_item["table"] == "events", "item"] = "x" * 80
    with pytest.raises(DataError, match="condition_source_value is longer than the 50"):
        write_omop(small.with_events(small.patient_table, long_item), url)
    assert not (tmp_path / "x.duckdb").exists()


def test_urls_healthsynth_does_not_read(tmp_path):
    with pytest.raises(ParameterError, match="is for 'mysql'.*PostgreSQL.*DuckDB") as e:
        read_omop("mysql://u:Secret99@host/db")
    assert "Secret99" not in str(e.value)
    with pytest.raises(ParameterError, match="not a valid URL"):
        read_omop("::not a url::")
    with pytest.raises(DatabaseError, match="does not exist"):
        read_omop(f"duckdb:///{tmp_path / 'missing.duckdb'}")
    assert not (tmp_path / "missing.duckdb").exists()
    with pytest.raises(ParameterError, match="max_patients"):
        read_omop(f"duckdb:///{tmp_path / 'missing.duckdb'}", max_patients=1)


@pytest.fixture
def code_map_plain():
    from healthsynth.knowledge import load_code_map

    return load_code_map("nafld")
