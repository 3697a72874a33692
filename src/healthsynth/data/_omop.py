"""OMOP CDM v5.4 tables from a prepared dataset, written as Parquet with pyarrow.

Five tables: ``person``, ``observation_period``, ``condition_occurrence``, ``measurement`` and
``death``, each with every column of the v5.4 specification in its order, plus
``drug_exposure``, ``procedure_occurrence`` and ``observation`` when a code map entry routes
items there (entries learned from an OMOP database do). Types follow the specification:
``integer`` -> int64, ``date`` -> date32, ``datetime`` -> timestamp[us], ``varchar`` -> string,
``NUMERIC`` -> float64. No OMOP vocabulary ships with healthsynth, so a ``*_concept_id`` is the
code map entry's concept ID where it has one (mappings learned from an OMOP database carry them)
and 0 ("no matching concept") otherwise, as are ``*_source_concept_id`` and ``unit_concept_id``
where a source value or unit is given; the codes themselves (ICD-10-CM, LOINC) go to the
``*_source_value`` columns, ready for a vocabulary mapping step. Sex becomes the OMOP gender
concepts 8532 (female) and 8507 (male), else 0.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from healthsynth.data._prepared import (
    CONDITION,
    DRUG,
    MEASUREMENT,
    OBSERVATION,
    PROCEDURE,
    Prepared,
)

__all__ = ["OMOP_TABLES", "omop_tables", "write_omop"]

#: OMOP gender concepts (the Gender vocabulary)
GENDER_CONCEPTS = {"female": 8532, "male": 8507}
#: tables written only when they have rows
OPTIONAL_TABLES = ("drug_exposure", "procedure_occurrence", "observation")

_INT = pa.int64()
_DATE = pa.date32()
_DATETIME = pa.timestamp("us")
_TEXT = pa.string()
_NUMBER = pa.float64()

#: the tables written and their columns (OMOP CDM v5.4), in the specification's order
OMOP_TABLES: dict[str, tuple[tuple[str, pa.DataType], ...]] = {
    "person": (
        ("person_id", _INT),
        ("gender_concept_id", _INT),
        ("year_of_birth", _INT),
        ("month_of_birth", _INT),
        ("day_of_birth", _INT),
        ("birth_datetime", _DATETIME),
        ("race_concept_id", _INT),
        ("ethnicity_concept_id", _INT),
        ("location_id", _INT),
        ("provider_id", _INT),
        ("care_site_id", _INT),
        ("person_source_value", _TEXT),
        ("gender_source_value", _TEXT),
        ("gender_source_concept_id", _INT),
        ("race_source_value", _TEXT),
        ("race_source_concept_id", _INT),
        ("ethnicity_source_value", _TEXT),
        ("ethnicity_source_concept_id", _INT),
    ),
    "observation_period": (
        ("observation_period_id", _INT),
        ("person_id", _INT),
        ("observation_period_start_date", _DATE),
        ("observation_period_end_date", _DATE),
        ("period_type_concept_id", _INT),
    ),
    "condition_occurrence": (
        ("condition_occurrence_id", _INT),
        ("person_id", _INT),
        ("condition_concept_id", _INT),
        ("condition_start_date", _DATE),
        ("condition_start_datetime", _DATETIME),
        ("condition_end_date", _DATE),
        ("condition_end_datetime", _DATETIME),
        ("condition_type_concept_id", _INT),
        ("condition_status_concept_id", _INT),
        ("stop_reason", _TEXT),
        ("provider_id", _INT),
        ("visit_occurrence_id", _INT),
        ("visit_detail_id", _INT),
        ("condition_source_value", _TEXT),
        ("condition_source_concept_id", _INT),
        ("condition_status_source_value", _TEXT),
    ),
    "measurement": (
        ("measurement_id", _INT),
        ("person_id", _INT),
        ("measurement_concept_id", _INT),
        ("measurement_date", _DATE),
        ("measurement_datetime", _DATETIME),
        ("measurement_time", _TEXT),
        ("measurement_type_concept_id", _INT),
        ("operator_concept_id", _INT),
        ("value_as_number", _NUMBER),
        ("value_as_concept_id", _INT),
        ("unit_concept_id", _INT),
        ("range_low", _NUMBER),
        ("range_high", _NUMBER),
        ("provider_id", _INT),
        ("visit_occurrence_id", _INT),
        ("visit_detail_id", _INT),
        ("measurement_source_value", _TEXT),
        ("measurement_source_concept_id", _INT),
        ("unit_source_value", _TEXT),
        ("unit_source_concept_id", _INT),
        ("value_source_value", _TEXT),
        ("measurement_event_id", _INT),
        ("meas_event_field_concept_id", _INT),
    ),
    "drug_exposure": (
        ("drug_exposure_id", _INT),
        ("person_id", _INT),
        ("drug_concept_id", _INT),
        ("drug_exposure_start_date", _DATE),
        ("drug_exposure_start_datetime", _DATETIME),
        ("drug_exposure_end_date", _DATE),
        ("drug_exposure_end_datetime", _DATETIME),
        ("verbatim_end_date", _DATE),
        ("drug_type_concept_id", _INT),
        ("stop_reason", _TEXT),
        ("refills", _INT),
        ("quantity", _NUMBER),
        ("days_supply", _INT),
        ("sig", _TEXT),
        ("route_concept_id", _INT),
        ("lot_number", _TEXT),
        ("provider_id", _INT),
        ("visit_occurrence_id", _INT),
        ("visit_detail_id", _INT),
        ("drug_source_value", _TEXT),
        ("drug_source_concept_id", _INT),
        ("route_source_value", _TEXT),
        ("dose_unit_source_value", _TEXT),
    ),
    "procedure_occurrence": (
        ("procedure_occurrence_id", _INT),
        ("person_id", _INT),
        ("procedure_concept_id", _INT),
        ("procedure_date", _DATE),
        ("procedure_datetime", _DATETIME),
        ("procedure_end_date", _DATE),
        ("procedure_end_datetime", _DATETIME),
        ("procedure_type_concept_id", _INT),
        ("modifier_concept_id", _INT),
        ("quantity", _INT),
        ("provider_id", _INT),
        ("visit_occurrence_id", _INT),
        ("visit_detail_id", _INT),
        ("procedure_source_value", _TEXT),
        ("procedure_source_concept_id", _INT),
        ("modifier_source_value", _TEXT),
    ),
    "observation": (
        ("observation_id", _INT),
        ("person_id", _INT),
        ("observation_concept_id", _INT),
        ("observation_date", _DATE),
        ("observation_datetime", _DATETIME),
        ("observation_type_concept_id", _INT),
        ("value_as_number", _NUMBER),
        ("value_as_string", _TEXT),
        ("value_as_concept_id", _INT),
        ("qualifier_concept_id", _INT),
        ("unit_concept_id", _INT),
        ("provider_id", _INT),
        ("visit_occurrence_id", _INT),
        ("visit_detail_id", _INT),
        ("observation_source_value", _TEXT),
        ("observation_source_concept_id", _INT),
        ("unit_source_value", _TEXT),
        ("qualifier_source_value", _TEXT),
        ("value_source_value", _TEXT),
        ("observation_event_id", _INT),
        ("obs_event_field_concept_id", _INT),
    ),
    "death": (
        ("person_id", _INT),
        ("death_date", _DATE),
        ("death_datetime", _DATETIME),
        ("death_type_concept_id", _INT),
        ("cause_concept_id", _INT),
        ("cause_source_value", _TEXT),
        ("cause_source_concept_id", _INT),
    ),
}


def write_omop(prepared: Prepared, folder: Path) -> None:
    """Write the OMOP tables as ``TABLE.parquet`` into ``folder`` (see :func:`omop_tables`)."""
    for name, table in omop_tables(prepared).items():
        pq.write_table(table, folder / f"{name}.parquet")


def omop_tables(prepared: Prepared, *, every_table: bool = False) -> dict[str, pa.Table]:
    """The OMOP tables as Arrow tables, in :data:`OMOP_TABLES` order.

    ``person``, ``observation_period``, ``condition_occurrence``, ``measurement`` and ``death``
    always; ``drug_exposure``, ``procedure_occurrence`` and ``observation`` when they have rows
    or ``every_table`` is set. Event IDs are 1..n within each table.
    """
    p, ev = prepared.patients, prepared.events
    zero = 0
    known_sex = p["sex_raw"].notna()
    gender = p["sex"].map(GENDER_CONCEPTS).fillna(0).astype(np.int64)
    tables = {
        "person": {
            "person_id": p["person_id"],
            "gender_concept_id": gender,
            "year_of_birth": p["birth"].dt.year.astype("Int64"),
            "race_concept_id": zero,
            "ethnicity_concept_id": zero,
            "person_source_value": p["source_id"],
            "gender_source_value": p["sex_raw"],
            "gender_source_concept_id": _zero_where(known_sex),
        },
        "observation_period": {
            "observation_period_id": np.arange(1, len(p) + 1, dtype=np.int64),
            "person_id": p["person_id"],
            "observation_period_start_date": p["start"],
            "observation_period_end_date": p["stop"],
            "period_type_concept_id": zero,
        },
    }
    lengths = {"person": len(p), "observation_period": len(p)}
    for domain, name, prefix, date_col in _EVENT_TABLES:
        rows = ev[ev["domain"] == domain].reset_index(drop=True)
        lengths[name] = len(rows)
        tables[name] = _events(rows, name, prefix, date_col)
    dead = p[p["died"]].reset_index(drop=True)
    tables["death"] = {
        "person_id": dead["person_id"],
        "death_date": dead["death_date"],
        "death_datetime": dead["death_date"],
        "death_type_concept_id": zero,
    }
    lengths["death"] = len(dead)
    return {
        name: _table(columns, tables[name], lengths[name])
        for name, columns in OMOP_TABLES.items()
        if every_table or name not in OPTIONAL_TABLES or lengths[name]
    }


# domain, table, column prefix, start date column
_EVENT_TABLES = (
    (CONDITION, "condition_occurrence", "condition", "condition_start_date"),
    (DRUG, "drug_exposure", "drug", "drug_exposure_start_date"),
    (PROCEDURE, "procedure_occurrence", "procedure", "procedure_date"),
    (MEASUREMENT, "measurement", "measurement", "measurement_date"),
    (OBSERVATION, "observation", "observation", "observation_date"),
)


def _events(rows: pd.DataFrame, name: str, prefix: str, date_col: str) -> dict:
    """The columns of one event table that healthsynth fills."""
    has_unit = rows["unit"].notna()
    out = {
        f"{name}_id": np.arange(1, len(rows) + 1, dtype=np.int64),
        "person_id": rows["person_id"],
        f"{prefix}_concept_id": _or_zero(rows["concept_id"]),
        date_col: rows["when"],
        date_col.replace("_date", "_datetime"): rows["when"],
        f"{prefix}_type_concept_id": 0,
        f"{prefix}_source_value": rows["source_value"],
        f"{prefix}_source_concept_id": _or_zero(rows["source_concept_id"]),
    }
    if name == "drug_exposure":  # a single-day exposure: the end date is NOT NULL
        out["drug_exposure_end_date"] = rows["when"]
        out["drug_exposure_end_datetime"] = rows["when"]
        out["quantity"] = rows["value"]
    if name in ("measurement", "observation"):
        out["value_as_number"] = rows["value"]
        out["unit_concept_id"] = _or_zero(rows["unit_concept_id"]).where(
            has_unit.to_numpy(bool) | rows["unit_concept_id"].notna().to_numpy(bool)
        )
        out["unit_source_value"] = rows["unit"]
    return out


def _or_zero(concepts: pd.Series) -> pd.Series:
    """Concept IDs with 0 ("no matching concept") where none is known."""
    return pd.Series(concepts, dtype="Int64").fillna(0).reset_index(drop=True)


def _table(columns: tuple[tuple[str, pa.DataType], ...], values: dict, n: int) -> pa.Table:
    """An Arrow table with every column of the spec; absent columns are all null."""
    arrays = []
    for name, dtype in columns:
        v = values.get(name)
        if v is None:
            arrays.append(pa.nulls(n, dtype))
        elif isinstance(v, int):
            arrays.append(pa.array(np.full(n, v, dtype=np.int64), type=dtype))
        elif dtype == _DATE:
            ts = pa.array(pd.Series(v).astype("datetime64[us]"), type=_DATETIME, from_pandas=True)
            arrays.append(ts.cast(_DATE))
        else:
            arrays.append(
                pa.array(pd.Series(v).reset_index(drop=True), type=dtype, from_pandas=True)
            )
    return pa.Table.from_arrays(arrays, schema=pa.schema([pa.field(c, t) for c, t in columns]))


def _zero_where(known: pd.Series) -> pd.Series:
    """Concept ID 0 where a source value is known, else null."""
    return pd.Series(0, index=known.index, dtype="Int64").where(known.to_numpy(bool))
