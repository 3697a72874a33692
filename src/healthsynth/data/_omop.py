"""OMOP CDM v5.4 tables from a prepared dataset, written as Parquet with pyarrow.

Five tables: ``person``, ``observation_period``, ``condition_occurrence``, ``measurement`` and
``death``, each with every column of the v5.4 specification in its order. Types follow the
specification: ``integer`` -> int64, ``date`` -> date32, ``datetime`` -> timestamp[us],
``varchar`` -> string, ``NUMERIC`` -> float64. No OMOP vocabulary ships with healthsynth, so
every required ``*_concept_id`` is 0 ("no matching concept"), as are ``*_source_concept_id``
and ``unit_concept_id`` where a source value or unit is given; the standard codes themselves
(ICD-10-CM, LOINC) go to the ``*_source_value`` columns, ready for a vocabulary mapping step.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from healthsynth.data._prepared import CONDITION, MEASUREMENT, Prepared

__all__ = ["OMOP_TABLES", "write_omop"]

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
    """Write the five OMOP tables as ``TABLE.parquet`` into ``folder``."""
    p, ev = prepared.patients, prepared.events
    zero = 0
    known_sex = p["sex_raw"].notna()
    tables = {
        "person": {
            "person_id": p["person_id"],
            "gender_concept_id": zero,
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
    cond = ev[ev["domain"] == CONDITION].reset_index(drop=True)
    tables["condition_occurrence"] = {
        "condition_occurrence_id": np.arange(1, len(cond) + 1, dtype=np.int64),
        "person_id": cond["person_id"],
        "condition_concept_id": zero,
        "condition_start_date": cond["when"],
        "condition_start_datetime": cond["when"],
        "condition_type_concept_id": zero,
        "condition_source_value": cond["source_value"],
        "condition_source_concept_id": zero,
    }
    meas = ev[ev["domain"] == MEASUREMENT].reset_index(drop=True)
    has_unit = meas["unit"].notna()
    tables["measurement"] = {
        "measurement_id": np.arange(1, len(meas) + 1, dtype=np.int64),
        "person_id": meas["person_id"],
        "measurement_concept_id": zero,
        "measurement_date": meas["when"],
        "measurement_datetime": meas["when"],
        "measurement_type_concept_id": zero,
        "value_as_number": meas["value"],
        "unit_concept_id": _zero_where(has_unit),
        "measurement_source_value": meas["source_value"],
        "measurement_source_concept_id": zero,
        "unit_source_value": meas["unit"],
    }
    dead = p[p["died"]].reset_index(drop=True)
    tables["death"] = {
        "person_id": dead["person_id"],
        "death_date": dead["death_date"],
        "death_datetime": dead["death_date"],
        "death_type_concept_id": zero,
    }
    lengths = {"person": len(p), "observation_period": len(p)}
    lengths |= {"condition_occurrence": len(cond), "measurement": len(meas), "death": len(dead)}
    for name, columns in OMOP_TABLES.items():
        table = _table(columns, tables[name], lengths[name])
        pq.write_table(table, folder / f"{name}.parquet")


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
