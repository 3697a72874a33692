"""Write a :class:`~healthsynth.data.Dataset` into a database as OMOP CDM v5.4 tables.

The tables are those of the Parquet export (``person``, ``observation_period``, ``death``,
``condition_occurrence``, ``drug_exposure``, ``procedure_occurrence``, ``measurement``,
``observation``) plus ``cdm_source``, created with the v5.4 column names, types, NOT NULL
columns and primary keys (:mod:`._omop_cdm`). Everything happens in one transaction: the schema,
the tables and their rows appear together, or, on any error, nothing does.
"""

from __future__ import annotations

import logging
from datetime import date
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from healthsynth.data._dataset import Dataset
from healthsynth.data._db import Database, open_database
from healthsynth.data._omop import omop_tables
from healthsynth.data._omop_cdm import CDM_TABLES, NOT_NULL, create_table_sql, text_length
from healthsynth.data._prepared import CodeMapLike, index_date_of, prepare
from healthsynth.errors import DatabaseError, DataError, ParameterError

__all__ = ["write_omop"]

logger = logging.getLogger(__name__)

_INT32 = (-(2**31), 2**31 - 1)


def write_omop(
    dataset: Dataset,
    url: str,
    *,
    schema: str | None = None,
    code_map: CodeMapLike | None = None,
    index_date: str = "2020-01-01",
    replace: bool = False,
    source_name: str = "healthsynth synthetic data",
    source_description: str | None = None,
) -> dict[str, int]:
    """Create OMOP CDM v5.4 tables in a database schema and load a dataset into them.

    Parameters
    ----------
    dataset
        The patients and their events (e.g. ``TimelineLM.sample(...)``).
    url
        ``postgresql://user:password@host:port/database`` or ``duckdb:///file.duckdb`` (the
        DuckDB file is created if absent).
    schema
        The schema to write into; created if absent. Default: ``public`` (PostgreSQL) or
        ``main`` (DuckDB).
    code_map
        Standard codes, units and OMOP concept IDs of the items, as for
        :func:`~healthsynth.data.export_dataset_as` (a model's ``code_map_``); entries with a
        ``concept_id`` give it to the events, entries with a ``domain`` route them to that table.
    index_date
        The calendar date that day 0 stands for.
    replace
        Allow a schema that already holds tables: the CDM tables written here are dropped and
        created anew (other tables are left alone). Without it such a schema is refused.
    source_name
        ``cdm_source.cdm_source_name``.
    source_description
        ``cdm_source.source_description`` (the command line puts its run record there); by
        default a sentence saying the persons are synthetic.

    Returns
    -------
    dict
        Rows written per table.

    Raises
    ------
    DatabaseError
        The database cannot be reached or refuses the login, the schema already holds tables
        (without ``replace``), or the database rejects the rows; nothing is written then.
    DataError
        Values that the CDM's types cannot hold: an ID beyond a 32-bit integer, a missing value
        in a NOT NULL column (e.g. ``year_of_birth`` for a patient without an age), or a text
        longer than its column.
    """
    if not isinstance(dataset, Dataset):
        raise ParameterError(
            f"dataset must be a healthsynth.data.Dataset; got {type(dataset).__name__}"
        )
    if not isinstance(replace, bool):
        raise ParameterError(f"replace must be True or False; got {replace!r}")
    index = index_date_of(index_date)
    prepared = prepare(dataset, code_map=code_map, index=index)
    tables = omop_tables(prepared, every_table=True)
    tables["cdm_source"] = _cdm_source(source_name, source_description)
    for name, table in tables.items():
        tables[name] = _checked(name, table)

    with open_database(url, write=True) as db:
        schema = schema or ("main" if db.dialect == "duckdb" else "public")
        created_file = bool(getattr(db, "created", False))
        try:
            with db.transaction():
                _prepare_schema(db, schema, replace=replace)
                for name, table in tables.items():
                    db.execute(create_table_sql(db.qualify(schema, name), name, dialect=db.dialect))
                    if table.num_rows:
                        db.load(schema, name, table)
        except DatabaseError:
            _forget(db, created_file)
            raise
        except Exception as e:  # the driver's own errors: constraint, type, permission ...
            _forget(db, created_file)
            raise db.fail(
                f"writing the OMOP tables into schema '{schema}'",
                e,
                "nothing was written; check that the user may create tables in that schema",
            ) from None
    counts = {name: int(t.num_rows) for name, t in tables.items()}
    logger.info("wrote OMOP CDM tables into schema %s: %s", schema, counts)
    return counts


def _prepare_schema(db: Database, schema: str, *, replace: bool) -> None:
    """Create the schema, or check that it may be written into (dropping our tables on replace)."""
    if not db.schema_exists(schema):
        db.execute(f"CREATE SCHEMA {db.qualify(schema)}")
        return
    present = db.tables(schema)
    if not present:
        return
    if not replace:
        rows = {
            t: int(db.rows(f"SELECT count(*) FROM {db.qualify(schema, t)}")[0][0]) for t in present
        }
        order = sorted(present, key=lambda t: (rows[t] == 0, t))
        shown = ", ".join(f"{t} ({rows[t]:,} rows)" for t in order[:8])
        more = f" and {len(present) - 8} more" if len(present) > 8 else ""
        raise DatabaseError(
            f"schema '{schema}' at {db.display} already holds tables: {shown}{more}; write into "
            "a new or empty schema, or pass replace=True (--replace) to drop and recreate the "
            "OMOP tables there"
        )
    for t in present:
        if t in CDM_TABLES:
            db.execute(f"DROP TABLE {db.qualify(schema, t)}")


def _checked(name: str, table: pa.Table) -> pa.Table:
    """The table, after checking that the CDM's types hold its values (DataError otherwise)."""
    required = NOT_NULL.get(name, frozenset())
    for field, column in zip(table.schema, table.columns, strict=True):
        col = field.name
        if col in required and column.null_count:
            raise DataError(
                f"OMOP table {name}: {column.null_count:,} rows have no {col}, which the CDM "
                "requires"
                + (
                    "; give every patient an age (the dataset's age column) so that a birth year "
                    "can be written"
                    if col == "year_of_birth"
                    else ""
                )
            )
        if pa.types.is_integer(field.type) and len(column) - column.null_count:
            lo, hi = pc.min(column).as_py(), pc.max(column).as_py()
            if lo < _INT32[0] or hi > _INT32[1]:
                bad = lo if lo < _INT32[0] else hi
                raise DataError(
                    f"OMOP table {name}: {col} {bad} does not fit the CDM's 32-bit integer; "
                    "renumber the patients (e.g. 1..n) before writing"
                )
        if pa.types.is_string(field.type):
            length = text_length(col)
            if length is None or len(column) - column.null_count == 0:
                continue
            too_long = pc.greater(pc.utf8_length(column), length)
            if pc.any(too_long).as_py():
                value = str(pc.filter(column, too_long)[0].as_py())
                raise DataError(
                    f"OMOP table {name}: the value {value[:60]!r} of {col} is longer than the "
                    f"{length} characters the CDM allows; shorten the item names or codes"
                )
    return table


def _cdm_source(name: str, description: str | None) -> pa.Table:
    today = date.today()
    values: dict[str, Any] = {
        "cdm_source_name": str(name)[:255],
        "cdm_source_abbreviation": "healthsynth",
        "cdm_holder": "healthsynth",
        "source_description": description
        or "Synthetic patients generated by healthsynth; no real person.",
        "source_release_date": today,
        "cdm_release_date": today,
        "cdm_version": "v5.4",
        "cdm_version_concept_id": 0,
        "vocabulary_version": "none",
    }
    cols = CDM_TABLES["cdm_source"]
    arrays = [pa.array([values.get(c)], type=t) for c, t in cols]
    return pa.Table.from_arrays(arrays, schema=pa.schema([pa.field(c, t) for c, t in cols]))


def _forget(db: Any, created_file: bool) -> None:
    """Remove a DuckDB file that this failed write created (it holds nothing)."""
    if not created_file:
        return
    path = Path(db.path)
    db.close()
    for p in (path, path.with_name(path.name + ".wal")):
        if p.exists():
            p.unlink()
