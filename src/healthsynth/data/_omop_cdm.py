"""The OMOP CDM v5.4 tables healthsynth creates in a database: SQL types, NOT NULL, primary keys.

The columns and their order are those of :data:`healthsynth.data._omop.OMOP_TABLES` (the
Parquet export); this module adds what a database needs on top, following the v5.4 DDL:
``integer``, ``date``, ``timestamp``, ``varchar(n)`` and ``numeric`` types, the NOT NULL
columns, and the primary keys. ``cdm_source`` (one row describing the CDM) is written to the
database only. DuckDB's ``NUMERIC`` without a precision is DECIMAL(18,3), which would round
values to three decimals, so numeric columns are ``DOUBLE`` there.
"""

from __future__ import annotations

import pyarrow as pa

from healthsynth.data._db import quote_identifier
from healthsynth.data._omop import OMOP_TABLES

__all__ = [
    "CDM_TABLES",
    "NOT_NULL",
    "PRIMARY_KEYS",
    "create_table_sql",
    "sql_type",
    "text_length",
]

_TEXT, _DATE = pa.string(), pa.date32()

#: cdm_source, which the Parquet export does not write
CDM_SOURCE: tuple[tuple[str, pa.DataType], ...] = (
    ("cdm_source_name", _TEXT),
    ("cdm_source_abbreviation", _TEXT),
    ("cdm_holder", _TEXT),
    ("source_description", _TEXT),
    ("source_documentation_reference", _TEXT),
    ("cdm_etl_reference", _TEXT),
    ("source_release_date", _DATE),
    ("cdm_release_date", _DATE),
    ("cdm_version", _TEXT),
    ("cdm_version_concept_id", pa.int64()),
    ("vocabulary_version", _TEXT),
)

#: every table written to a database, with its columns
CDM_TABLES: dict[str, tuple[tuple[str, pa.DataType], ...]] = {
    **OMOP_TABLES,
    "cdm_source": CDM_SOURCE,
}

#: NOT NULL columns of the v5.4 DDL
NOT_NULL: dict[str, frozenset[str]] = {
    "person": frozenset(
        {
            "person_id",
            "gender_concept_id",
            "year_of_birth",
            "race_concept_id",
            "ethnicity_concept_id",
        }
    ),
    "observation_period": frozenset(c for c, _ in OMOP_TABLES["observation_period"]),
    "condition_occurrence": frozenset(
        {
            "condition_occurrence_id",
            "person_id",
            "condition_concept_id",
            "condition_start_date",
            "condition_type_concept_id",
        }
    ),
    "drug_exposure": frozenset(
        {
            "drug_exposure_id",
            "person_id",
            "drug_concept_id",
            "drug_exposure_start_date",
            "drug_exposure_end_date",
            "drug_type_concept_id",
        }
    ),
    "procedure_occurrence": frozenset(
        {
            "procedure_occurrence_id",
            "person_id",
            "procedure_concept_id",
            "procedure_date",
            "procedure_type_concept_id",
        }
    ),
    "measurement": frozenset(
        {
            "measurement_id",
            "person_id",
            "measurement_concept_id",
            "measurement_date",
            "measurement_type_concept_id",
        }
    ),
    "observation": frozenset(
        {
            "observation_id",
            "person_id",
            "observation_concept_id",
            "observation_date",
            "observation_type_concept_id",
        }
    ),
    "death": frozenset({"person_id", "death_date"}),
    "cdm_source": frozenset(
        {
            "cdm_source_name",
            "cdm_source_abbreviation",
            "cdm_holder",
            "source_release_date",
            "cdm_release_date",
            "cdm_version_concept_id",
            "vocabulary_version",
        }
    ),
}

#: primary keys of the v5.4 DDL (death and cdm_source have none)
PRIMARY_KEYS: dict[str, str] = {
    "person": "person_id",
    "observation_period": "observation_period_id",
    "condition_occurrence": "condition_occurrence_id",
    "drug_exposure": "drug_exposure_id",
    "procedure_occurrence": "procedure_occurrence_id",
    "measurement": "measurement_id",
    "observation": "observation_id",
}

# text columns whose length is not the usual varchar(50); None is unlimited (TEXT)
_LENGTHS: dict[str, int | None] = {
    "stop_reason": 20,
    "measurement_time": 10,
    "value_as_string": 60,
    "sig": None,
    "cdm_source_name": 255,
    "cdm_source_abbreviation": 25,
    "cdm_holder": 255,
    "source_description": None,
    "source_documentation_reference": 255,
    "cdm_etl_reference": 255,
    "cdm_version": 10,
    "vocabulary_version": 20,
}


def text_length(column: str) -> int | None:
    """The most characters a text column holds (None: unlimited)."""
    return _LENGTHS.get(column, 50)


def sql_type(column: str, dtype: pa.DataType, *, dialect: str) -> str:
    """The column's SQL type in the v5.4 DDL (numeric is DOUBLE in DuckDB)."""
    if pa.types.is_integer(dtype):
        return "integer"
    if pa.types.is_date(dtype):
        return "date"
    if pa.types.is_timestamp(dtype):
        return "timestamp"
    if pa.types.is_floating(dtype):
        return "double" if dialect == "duckdb" else "numeric"
    length = text_length(column)
    return "text" if length is None else f"varchar({length})"


def create_table_sql(target: str, table: str, *, dialect: str) -> str:
    """``CREATE TABLE target (...)`` for one CDM table, with its primary key.

    ``target`` is the quoted, qualified table name (``Database.qualify(schema, table)``).
    """
    required = NOT_NULL.get(table, frozenset())
    cols = ",\n  ".join(
        f"{quote_identifier(c)} {sql_type(c, t, dialect=dialect)}"
        + (" NOT NULL" if c in required else " NULL")
        for c, t in CDM_TABLES[table]
    )
    if table in PRIMARY_KEYS:
        cols += f",\n  PRIMARY KEY ({quote_identifier(PRIMARY_KEYS[table])})"
    return f"CREATE TABLE {target} (\n  {cols}\n)"
