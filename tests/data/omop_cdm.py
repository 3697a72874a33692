"""The real NAFLD cohort loaded into OMOP CDM databases, shared by the OMOP tests.

The cohort goes in through ``write_omop`` with the packaged NAFLD code mapping, where five
items also carry their OMOP standard concept IDs (a mapping CSV's optional ``concept_id``
column), and a small ``concept`` table names those five concepts, as the vocabulary tables of
an OHDSI database would.
"""

from __future__ import annotations

import io
import uuid
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from healthsynth.data import Dataset, load_timelines, write_omop
from healthsynth.data._db import open_database
from healthsynth.knowledge import CodeMap, load_code_map

INDEX_DATE = "2005-01-01"

#: OMOP standard concepts of five NAFLD items: (table, item) -> concept ID
CONCEPTS = {
    ("events", "diabetes"): 201826,
    ("events", "htn"): 320128,
    ("labs", "chol"): 3027114,
    ("labs", "hdl"): 3007070,
    ("labs", "sbp"): 3004249,
}

#: their rows of the OMOP vocabulary's concept table
VOCABULARY = [
    (201826, "Type 2 diabetes mellitus", "Condition", "SNOMED", "Clinical Finding", "44054006"),
    (320128, "Essential hypertension", "Condition", "SNOMED", "Clinical Finding", "59621000"),
    (
        3027114,
        "Cholesterol [Mass/volume] in Serum or Plasma",
        "Measurement",
        "LOINC",
        "Lab Test",
        "2093-3",
    ),
    (
        3007070,
        "Cholesterol in HDL [Mass/volume] in Serum or Plasma",
        "Measurement",
        "LOINC",
        "Lab Test",
        "2085-9",
    ),
    (3004249, "Systolic blood pressure", "Measurement", "LOINC", "Clinical Observation", "8480-6"),
]


def concept_map(folder: Path) -> CodeMap:
    """The packaged NAFLD mapping with a concept_id column for the five items."""
    src = resources.files("healthsynth.knowledge") / "mappings" / "nafld.csv"
    df = pd.read_csv(io.StringIO(src.read_text(encoding="utf-8")), dtype=str, keep_default_na=False)
    df["concept_id"] = [
        str(CONCEPTS.get((t, i), "")) for t, i in zip(df["table"], df["item"], strict=True)
    ]
    path = folder / "nafld-concepts.csv"
    df.to_csv(path, index=False)
    return load_code_map(path)


def nafld(n: int | None = 200) -> Dataset:
    """A seeded subset of the real NAFLD cohort."""
    return load_timelines("nafld", max_patients=n, seed=0)


def load_cdm(dataset: Dataset, url: str, schema: str, code_map: CodeMap) -> None:
    """Write the dataset as a CDM and add the concept table."""
    write_omop(dataset, url, schema=schema, code_map=code_map, index_date=INDEX_DATE)
    with open_database(url, write=True) as db:
        t = db.qualify(schema, "concept")
        db.execute(
            f"CREATE TABLE {t} (concept_id integer NOT NULL, concept_name varchar(255) NOT NULL, "
            "domain_id varchar(20) NOT NULL, vocabulary_id varchar(20) NOT NULL, "
            "concept_class_id varchar(20) NOT NULL, standard_concept varchar(1) NULL, "
            "concept_code varchar(50) NOT NULL, valid_start_date date NOT NULL, "
            "valid_end_date date NOT NULL, invalid_reason varchar(1) NULL)"
        )
        for cid, name, domain, vocab, cls, code in VOCABULARY:
            db.execute(
                f"INSERT INTO {t} VALUES ({cid}, '{name}', '{domain}', '{vocab}', '{cls}', 'S', "
                f"'{code}', DATE '1970-01-01', DATE '2099-12-31', NULL)"
            )


def new_schema() -> str:
    return "cdm_" + uuid.uuid4().hex[:10]


def drop_schema(url: str, schema: str) -> None:
    with open_database(url, write=True) as db:
        db.execute(f"DROP SCHEMA IF EXISTS {db.qualify(schema)} CASCADE")


def as_csv_naming(dataset: Dataset, code_map: CodeMap) -> pd.DataFrame:
    """A database-read dataset's events named as in the CSV tables: id, days, item, value."""
    by_concept = {str(c): i for (_, i), c in CONCEPTS.items()}
    by_code = {e.code: e.item for e in code_map.entries.values()}
    ev = dataset.events()
    ev["item"] = [by_concept.get(i, by_code.get(i, i)) for i in ev["item"]]
    ev = ev.rename(columns={dataset.key: "id"})
    return sorted_events(ev[["id", "days", "item", "value"]])


def sorted_events(ev: pd.DataFrame) -> pd.DataFrame:
    return ev.sort_values(["id", "days", "item", "value"], kind="stable").reset_index(drop=True)


def csv_views(cohort: Dataset, from_db: Dataset, code_map: CodeMap) -> tuple[Dataset, Dataset]:
    """The CSV-read cohort and the database-read one in the same layout and names.

    Only what a CDM holds is kept: the patients' id, age, sex, futime and status, and the
    events and labs tables.
    """
    keep = ["id", "age", "sex", "futime", "status"]
    tables = {"patients": cohort.patient_table[keep]}
    tables |= {n: cohort.tables[n] for n in ("events", "labs")}
    real = Dataset.from_tables(
        tables, key="id", time="days", end="futime", death="status", sex="sex", age="age"
    )
    events = as_csv_naming(from_db, code_map)
    labs = events["item"].isin(set(cohort.tables["labs"]["test"]))
    p = from_db.patient_table.rename(
        columns={"person_id": "id", "follow_up_days": "futime", "died": "status"}
    )
    copy = real.with_events(
        p[keep].astype({c: real.patient_table[c].dtype for c in keep}),
        events.assign(table=np.where(labs, "labs", "events")),
    )
    return real, copy


def referential_checks(db: Any, schema: str) -> dict[str, int]:
    """Events of unknown persons, outside every observation period, or after death."""
    s = db.qualify(schema)
    tables = {
        "condition_occurrence": "condition_start_date",
        "measurement": "measurement_date",
        "drug_exposure": "drug_exposure_start_date",
        "procedure_occurrence": "procedure_date",
        "observation": "observation_date",
    }
    out = {"orphans": 0, "outside_period": 0, "after_death": 0}
    for t, d in tables.items():
        out["orphans"] += db.rows(
            f"SELECT count(*) FROM {s}.{t} e WHERE NOT EXISTS "
            f"(SELECT 1 FROM {s}.person p WHERE p.person_id = e.person_id)"
        )[0][0]
        out["outside_period"] += db.rows(
            f"SELECT count(*) FROM {s}.{t} e WHERE NOT EXISTS (SELECT 1 FROM "
            f"{s}.observation_period o WHERE o.person_id = e.person_id AND e.{d} BETWEEN "
            "o.observation_period_start_date AND o.observation_period_end_date)"
        )[0][0]
        out["after_death"] += db.rows(
            f"SELECT count(*) FROM {s}.{t} e JOIN {s}.death x ON x.person_id = e.person_id "
            f"WHERE e.{d} > x.death_date"
        )[0][0]
    return out
