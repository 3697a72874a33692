"""Read an OMOP CDM database (PostgreSQL, DuckDB) into a timelines :class:`Dataset`.

What is read (see ``docs/omop.md``):

* ``person``: sex (gender concepts 8532/8507, else the source value) and birth (the birth
  date, else year/month/day of birth);
* ``observation_period``: each person's first start and last end; a person without one is left
  out (counted);
* ``death``: who died, and when;
* the chosen event domains, each as one event table named after its CDM table:
  ``condition_occurrence``, ``drug_exposure``, ``procedure_occurrence``, ``measurement``
  and ``observation`` (the last two with ``value_as_number``).

An event's item is its standard concept ID (as text, e.g. ``"201826"``), or its source value
where the concept ID is 0 or missing; events with neither are left out (counted). Times are
whole days from each person's index date: the start of their first observation period, or one
``index_date`` for everybody. Every item's concept IDs, most frequent source value and unit are
kept in :attr:`OmopData.concepts` (``healthsynth.knowledge.CodeMap.from_frame`` turns it into a
code map), so synthetic OMOP output carries the source's concept IDs.

Rows are fetched ``batch_size`` at a time (a server-side cursor in PostgreSQL, Arrow batches in
DuckDB) and kept as compact arrays; no table is loaded whole into pandas.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from healthsynth.data._dataset import Dataset, EventTable
from healthsynth.data._db import open_database
from healthsynth.data._omop_queries import KEY, OMOP_DOMAINS, TIME, CdmReader
from healthsynth.data._prepared import index_date_of
from healthsynth.errors import DatabaseError, DataError, ParameterError

__all__ = ["OMOP_DOMAINS", "OmopData", "read_omop"]

logger = logging.getLogger(__name__)


_GENDER = {8532: "female", 8507: "male"}
# the patients table's columns
SEX, AGE, END, DIED = "sex", "age", "follow_up_days", "died"


@dataclass(frozen=True)
class OmopData:
    """What :func:`read_omop` returns.

    Attributes
    ----------
    dataset
        Patients (``person_id``, ``sex``, ``age``, ``follow_up_days``, ``died``) and one
        event table per domain read (``person_id``, ``days``, ``concept`` and, for
        measurement and observation, ``value``).
    concepts
        One row per ``(table, item)``, with :class:`~healthsynth.knowledge.CodeEntry`'s
        columns (``vocabulary``, ``code``, ``description``, ``unit``, ``concept_id``,
        ``source_concept_id``, ``unit_concept_id``, ``domain`` ...) and ``events``.
    record
        Counts and timings of the read (persons, events per table, rows left out and why).
    """

    dataset: Dataset
    concepts: pd.DataFrame
    record: dict[str, Any] = field(default_factory=dict)


def read_omop(
    url: str,
    *,
    schema: str | None = None,
    domains: Sequence[str] | None = None,
    max_patients: int | None = None,
    index_date: str | None = None,
    vocabulary_schema: str | None = None,
    seed: int = 0,
    batch_size: int = 100_000,
) -> OmopData:
    """Read persons and their events from an OMOP CDM v5.x database.

    Parameters
    ----------
    url
        ``postgresql://user:password@host:port/database`` or ``duckdb:///file.duckdb``.
    schema
        The CDM schema (default ``public`` in PostgreSQL, ``main`` in DuckDB).
    domains
        Event domains to read: ``condition``, ``drug``, ``procedure``, ``measurement``,
        ``observation``. Default: every one whose table exists.
    max_patients
        Read a random subset of this many persons (seeded by ``seed``).
    index_date
        Day 0 for everybody (e.g. ``"2005-01-01"``); default: each person's first observation
        period start.
    vocabulary_schema
        Where the ``concept`` table is (default: ``schema``); concept names and vocabularies
        are read from it when it exists.
    seed
        Seed of the ``max_patients`` subset.
    batch_size
        Rows fetched at a time.

    Raises
    ------
    DatabaseError
        Unreachable database, refused login, or a schema without the CDM tables ``person``
        and ``observation_period`` (or without a chosen domain's table).
    DataError
        No events in the chosen domains, fewer than two persons with an observation period,
        or text that is not UTF-8.
    """
    started = time.perf_counter()
    chosen = _check_domains(domains)
    if max_patients is not None and (
        isinstance(max_patients, bool) or not isinstance(max_patients, int) or max_patients < 2
    ):
        raise ParameterError(
            f"max_patients must be a whole number of at least 2; got {max_patients!r}"
        )
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise ParameterError(f"batch_size must be a positive whole number; got {batch_size!r}")
    fixed_index = _index_day(index_date)
    with open_database(url) as db:
        schema = schema or ("main" if db.dialect == "duckdb" else "public")
        reader = CdmReader(db, schema, batch_size)
        present, chosen = _tables_to_read(db, reader, schema, chosen)
        persons = reader.persons(has_death="death" in present)
        n_all = len(persons)
        persons = persons[persons["start"].notna()].reset_index(drop=True)
        n_observed = len(persons)
        if len(persons) < 2:
            raise DataError(
                f"schema '{schema}' at {db.display} has {len(persons)} person(s) with an "
                "observation period; healthsynth needs at least two to learn from"
            )
        if max_patients is not None and max_patients < len(persons):
            pick = np.random.default_rng(seed).choice(len(persons), max_patients, replace=False)
            persons = persons.iloc[np.sort(pick)].reset_index(drop=True)
            only = persons["person_id"].to_numpy(np.int64)
        else:
            only = None
        index = (
            np.full(len(persons), fixed_index, dtype=np.int64)
            if fixed_index is not None
            else persons["start"].to_numpy(np.int64)
        )
        events, counts = {}, {}
        concept_rows = []
        for d in chosen:
            spec = OMOP_DOMAINS[d]
            frame, info, count = reader.events(spec, persons["person_id"], index, only)
            counts[spec.table] = count
            if len(frame):
                events[spec.table] = frame
                info["domain"] = d
                concept_rows.append(info)
        if not events:
            raise DataError(
                f"schema '{schema}' at {db.display} has no events with a concept ID or source "
                f"value for these persons in the domains {', '.join(chosen)}; choose other "
                "domains (--domains) or check the CDM"
            )
        concepts = pd.concat(concept_rows, ignore_index=True)
        vocab = vocabulary_schema or schema
        if "concept" in (present if vocab == schema else set(db.tables(vocab))):
            concepts = reader.describe(concepts, vocab)
    patients = _patients(persons, index)
    dataset = _dataset(patients, events)
    concepts = _finish_concepts(concepts, schema)
    record = {
        "schema": schema,
        "domains": list(chosen),
        "persons_in_cdm": int(n_all),
        "persons_without_observation_period": int(n_all - n_observed),
        "persons_read": int(len(patients)),
        "events": counts,
        "index": "fixed " + str(index_date) if fixed_index is not None else "observation start",
        "seconds": round(time.perf_counter() - started, 3),
    }
    _log_left_out(n_all, n_observed, counts)
    return OmopData(dataset=dataset, concepts=concepts, record=record)


def _tables_to_read(
    db: Any, reader: CdmReader, schema: str, chosen: list[str] | None
) -> tuple[set[str], list[str]]:
    """The schema's tables and the domains to read; a DatabaseError if the CDM lacks them."""
    present = set(reader.guard("listing the tables", lambda: db.tables(schema)))
    missing = [t for t in ("person", "observation_period") if t not in present]
    if missing:
        raise DatabaseError(
            f"schema '{schema}' at {db.display} is not an OMOP CDM: it has no "
            f"{' or '.join(missing)} table; give the schema that holds the CDM "
            f"(--omop-schema){_holding(present)}"
        )
    if chosen is None:
        return present, [d for d, spec in OMOP_DOMAINS.items() if spec.table in present]
    absent = [OMOP_DOMAINS[d].table for d in chosen if OMOP_DOMAINS[d].table not in present]
    if absent:
        raise DatabaseError(
            f"schema '{schema}' at {db.display} has no {', '.join(absent)} table; leave "
            "that domain out of --domains"
        )
    return present, chosen


def _dataset(patients: pd.DataFrame, events: dict[str, pd.DataFrame]) -> Dataset:
    return Dataset.from_tables(
        {"patients": patients, **events},
        key=KEY,
        time=TIME,
        end=END,
        death=DIED,
        sex=SEX,
        age=AGE,
        layouts={
            t: EventTable("code", code="concept", value="value" if "value" in f else None)
            for t, f in events.items()
        },
        sources={t: f"OMOP table {t}" for t in events} | {"patients": "OMOP table person"},
    )


def _log_left_out(n_all: int, n_observed: int, counts: dict[str, dict[str, int]]) -> None:
    if n_all > n_observed:
        logger.warning(
            "%d of %d persons have no observation period and were left out",
            n_all - n_observed,
            n_all,
        )
    for table, c in counts.items():
        if c["without_concept_or_source"]:
            logger.warning(
                "%s: %d rows have neither a concept ID nor a source value and were left out",
                table,
                c["without_concept_or_source"],
            )


def _finish_concepts(concepts: pd.DataFrame, schema: str) -> pd.DataFrame:
    """Give the concept frame every column of a code map entry."""
    out = concepts.copy()
    if "vocabulary" not in out:
        out["vocabulary"] = ""
        out["code"] = out["source_value"].fillna("")
    if "concept_name" not in out:
        out["concept_name"] = None
    out["description"] = [
        name if isinstance(name, str) and name else (src or f"OMOP concept {item}")
        for name, src, item in zip(
            out["concept_name"], out["source_value"], out["item"], strict=True
        )
    ]
    out["low"] = np.nan
    out["high"] = np.nan
    out["note"] = [f"learned from OMOP CDM schema {schema}: {n} events" for n in out["events"]]
    for c in ("concept_id", "source_concept_id", "unit_concept_id"):
        out[c] = pd.array(out[c], dtype="Int64")
    columns = [
        "table",
        "item",
        "vocabulary",
        "code",
        "description",
        "unit",
        "low",
        "high",
        "note",
        "concept_id",
        "source_concept_id",
        "unit_concept_id",
        "domain",
        "source_value",
        "concept_name",
        "events",
    ]
    return out[columns].reset_index(drop=True)


def _patients(persons: pd.DataFrame, index: np.ndarray) -> pd.DataFrame:
    gender = pd.to_numeric(persons["gender_concept_id"], errors="coerce")
    source = persons["gender_source_value"].map(
        lambda s: s.strip() if isinstance(s, str) and s.strip() else None
    )
    sex = [
        _GENDER.get(int(g), s) if g == g else s
        for g, s in zip(gender.to_numpy(float), source, strict=True)
    ]
    year = pd.to_numeric(persons["year_of_birth"], errors="coerce").to_numpy(float)
    month = pd.to_numeric(persons["month_of_birth"], errors="coerce").to_numpy(float)
    day = pd.to_numeric(persons["day_of_birth"], errors="coerce").to_numpy(float)
    birth = pd.to_numeric(persons["birth_day"], errors="coerce").to_numpy(float)
    # a full birth date: exact age in whole years; a year only: the OHDSI convention
    # (year of the index date minus year of birth)
    full = np.isnan(birth) & ~np.isnan(year) & ~np.isnan(month) & ~np.isnan(day)
    for i in np.flatnonzero(full):
        try:
            birth[i] = (
                pd.Timestamp(int(year[i]), int(month[i]), int(day[i])) - pd.Timestamp(0)
            ).days
        except ValueError:
            pass
    index_year = (np.datetime64("1970-01-01") + index.astype("timedelta64[D]")).astype(
        "datetime64[Y]"
    ).astype(int) + 1970
    exact = np.floor((index - birth) / 365.25)
    age = np.where(np.isnan(birth), index_year - year, exact)
    stop = persons["stop"].to_numpy(float) - index
    death = persons["death_day"].to_numpy(float) - index
    died = ~np.isnan(death)
    end = np.where(died, death, stop)
    return pd.DataFrame(
        {
            KEY: persons["person_id"].to_numpy(np.int64),
            SEX: pd.Series(sex, dtype=object),
            AGE: pd.array(np.where(np.isnan(age), np.nan, age), dtype="Float64").astype(float),
            END: end,
            DIED: died.astype(np.int64),
        }
    )


def _check_domains(domains: Sequence[str] | None) -> list[str] | None:
    if domains is None:
        return None
    if isinstance(domains, str):
        domains = [d.strip() for d in domains.split(",") if d.strip()]
    chosen = list(dict.fromkeys(str(d).strip().lower() for d in domains))
    bad = [d for d in chosen if d not in OMOP_DOMAINS]
    if bad or not chosen:
        raise ParameterError(
            f"unknown OMOP domain(s) {', '.join(map(repr, bad)) or '(none given)'}; choose from "
            f"{', '.join(OMOP_DOMAINS)}"
        )
    return chosen


def _index_day(value: str | None) -> int | None:
    """A fixed index date as days since 1970, or None."""
    if value is None:
        return None
    return int(index_date_of(value).astype("datetime64[D]").astype(np.int64))


def _holding(present: set[str]) -> str:
    if not present:
        return "; this schema holds no tables"
    shown = sorted(present)[:6]
    more = ", ..." if len(present) > 6 else ""
    return f"; this schema holds: {', '.join(shown)}{more}"
