"""Multi-table patient data: one patients table and event tables keyed by patient ID with a time.

A :class:`Dataset` holds

* a **patients table**: one row per patient, keyed by ``key``, with static attributes (age, sex,
  follow-up time, death);
* one or more **event tables**, each with the key and a ``time`` column (days relative to an index
  date as numbers, or calendar dates) and either

  - a **code** layout: one categorical column naming what happened (``event``, ``test``), and
    optionally one numeric column holding its value (a lab result), or
  - a **wide** layout: one row per visit with several measured columns (``bili``, ``albumin``).

:meth:`Dataset.events` turns every event table into one long frame
(``key``, ``time``, ``table``, ``item``, ``value``), which is what timeline generators and
metrics work on; :meth:`Dataset.with_events` turns such a frame back into tables of the same
layout. Validation runs when the dataset is built and reports the first problem in one sentence.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pandas as pd

from healthsynth.data._death import (
    check_death_event,
    death_days,
    default_death_event,
    split_code,
)
from healthsynth.data._io import read_table, write_table
from healthsynth.data._layout import EventTable
from healthsynth.data._names import check_name
from healthsynth.data._schema import Schema, infer_schema
from healthsynth.data._tables_check import (
    check_event_tables,
    check_patients,
    check_tables,
    time_kind,
)
from healthsynth.errors import DataError

__all__ = ["Dataset", "EventTable", "EVENT_COLUMNS"]

#: columns of the long event frame returned by :meth:`Dataset.events`
EVENT_COLUMNS = ("table", "item", "value")


@dataclass(frozen=True)
class Dataset:
    """A patients table and event tables keyed by patient ID with a time column.

    Build one with :meth:`from_tables` (which infers layouts and schemas and validates) or
    :meth:`read` (from files). Times are numbers (days from an index date) or dates; they stay
    as given.

    Parameters
    ----------
    tables
        Table name -> DataFrame; ``patients`` names the patients table.
    key
        The patient ID column, present in every table.
    time
        The time column of the event tables (the same name in each).
    patients
        Name of the patients table.
    layouts
        Event table name -> :class:`EventTable`.
    schemas
        Table name -> :class:`~healthsynth.data.Schema` (inferred when not given).
    end, death
        Optional patients columns: the end of follow-up on the time scale of the events, and a
        flag (1/True) that the patient died at ``end``.
    sex, age
        Optional patients columns: the patient's sex (``m``/``male``/``f``/``female``, any case)
        and age in years at the index date, used by sex- and age-specific clinical rules.
    death_value
        The value of ``death`` that means "died" (default 1; ``True`` also counts).
    death_event
        An event code that records death (``item`` or ``table/item`` of a code table); a
        code table holding MEDS's ``MEDS_DEATH`` makes it the death event by default. Nothing
        may follow it (events on the same day come before it), and a patient dies at most once.
    """

    tables: Mapping[str, pd.DataFrame]
    key: str
    time: str
    patients: str
    layouts: Mapping[str, EventTable]
    schemas: Mapping[str, Schema] = field(default_factory=dict)
    end: str | None = None
    death: str | None = None
    sex: str | None = None
    age: str | None = None
    death_value: Any = 1
    death_event: str | None = None

    def __post_init__(self) -> None:
        # table names become file names (NAME.csv) wherever a dataset is written
        for n in self.tables:
            check_name(n, what="table name")

    # -- construction ---------------------------------------------------------------------
    @classmethod
    def from_tables(
        cls,
        tables: Mapping[str, pd.DataFrame],
        *,
        key: str,
        time: str,
        patients: str | None = None,
        end: str | None = None,
        death: str | None = None,
        sex: str | None = None,
        age: str | None = None,
        death_value: Any = 1,
        death_event: str | None = None,
        layouts: Mapping[str, EventTable] | None = None,
        sources: Mapping[str, str] | None = None,
    ) -> Dataset:
        """Build and validate a dataset; ``patients`` defaults to the first table.

        ``sources`` names each table in error messages (e.g. its file); it defaults to
        ``table 'NAME'``.
        """
        patients, src = check_tables(tables, key=key, patients=patients, sources=sources)
        p = tables[patients]
        check_patients(p, key=key, source=src[patients], columns=(end, death, sex, age))
        clean, layouts = check_event_tables(
            tables, key=key, time=time, patients=patients, layouts=layouts, sources=src
        )
        if death_event is None:
            death_event = default_death_event(clean, layouts, patients)
        if death_event is not None:
            check_death_event(
                clean,
                layouts,
                code=str(death_event),
                key=key,
                time=time,
                patients=patients,
                sources=src,
            )
        schemas = {n: infer_schema(df, identifiers=[key], source=src[n]) for n, df in clean.items()}
        return cls(
            tables=clean,
            key=key,
            time=time,
            patients=patients,
            layouts=layouts,
            schemas=schemas,
            end=end,
            death=death,
            sex=sex,
            age=age,
            death_value=death_value,
            death_event=None if death_event is None else str(death_event),
        )

    @classmethod
    def read(
        cls,
        paths: Mapping[str, str | Path],
        *,
        key: str,
        time: str,
        patients: str | None = None,
        **kwargs: Any,
    ) -> Dataset:
        """Read each table from a CSV or Parquet file and build the dataset.

        Table names must be plain names (letters, digits and ``_ . + -``): they become file
        names when the dataset, or data sampled from a model of it, is written.
        """
        for n, p in paths.items():
            check_name(n, what="table name", where=f"(for data file {p})")
        tables = {n: read_table(p) for n, p in paths.items()}
        sources = {n: f"data file {p}" for n, p in paths.items()}
        return cls.from_tables(
            tables, key=key, time=time, patients=patients, sources=sources, **kwargs
        )

    # -- views ----------------------------------------------------------------------------
    @property
    def event_tables(self) -> list[str]:
        """Names of the event tables, in order."""
        return [n for n in self.tables if n != self.patients]

    @property
    def patient_table(self) -> pd.DataFrame:
        """The patients table."""
        return self.tables[self.patients]

    @property
    def n_patients(self) -> int:
        """Number of patients."""
        return len(self.patient_table)

    @property
    def times_are_dates(self) -> bool:
        """Whether event times are calendar dates (else numbers of days)."""
        first = self.tables[self.event_tables[0]][self.time]
        return time_kind(first) == "dates"

    def events(self) -> pd.DataFrame:
        """Every event as one long frame: key, time, ``table``, ``item``, ``value``.

        ``item`` is the code (code layout) or the measured column's name (wide layout, one row
        per non-missing value); ``value`` is the number, or NaN for events without one. Rows are
        ordered by patient, time, table order and item, except that a death event comes after
        the other events of its day.
        """
        parts = []
        for n in self.event_tables:
            df, lay = self.tables[n], self.layouts[n]
            if lay.layout == "code":
                assert lay.code is not None
                part = pd.DataFrame(
                    {
                        self.key: df[self.key].to_numpy(),
                        self.time: df[self.time].to_numpy(),
                        "table": n,
                        "item": df[lay.code].astype("string").to_numpy(dtype=object),
                        "value": (
                            pd.to_numeric(df[lay.value], errors="coerce").to_numpy(float)
                            if lay.value
                            else np.nan
                        ),
                    }
                )
                part = part[pd.notna(part["item"])]
            else:
                long = df[[self.key, self.time, *lay.columns]].melt(
                    id_vars=[self.key, self.time], var_name="item", value_name="value"
                )
                long = long[long["value"].notna()]
                part = pd.DataFrame(
                    {
                        self.key: long[self.key].to_numpy(),
                        self.time: long[self.time].to_numpy(),
                        "table": n,
                        "item": long["item"].astype(str).to_numpy(dtype=object),
                        "value": pd.to_numeric(long["value"], errors="coerce").to_numpy(float),
                    }
                )
            parts.append(part)
        out = pd.concat(parts, ignore_index=True)
        order = {n: i for i, n in enumerate(self.event_tables)}
        out["_t"] = out["table"].map(order)
        out["_d"] = False
        if self.death_event is not None:
            table, item = split_code(self.death_event, self.tables)
            out["_d"] = (out["item"] == item) & ((out["table"] == table) if table else True)
        out = out.sort_values([self.key, self.time, "_d", "_t", "item"], kind="stable")
        return out.drop(columns=["_t", "_d"]).reset_index(drop=True)

    def with_events(self, patients: pd.DataFrame, events: pd.DataFrame) -> Dataset:
        """A dataset of the same layout from a patients table and a long event frame.

        The inverse of :meth:`events`: code tables get one row per event; wide tables one row
        per patient, time and table with the measured columns filled (missing where an item was
        not measured). Column order and dtypes follow this dataset's tables.
        """
        tables: dict[str, pd.DataFrame] = {self.patients: patients.reset_index(drop=True)}
        for n in self.event_tables:
            lay, like = self.layouts[n], self.tables[n]
            ev = events[events["table"] == n]
            if lay.layout == "code":
                assert lay.code is not None
                df = pd.DataFrame(
                    {self.key: ev[self.key].to_numpy(), self.time: ev[self.time].to_numpy()}
                )
                df[lay.code] = ev["item"].to_numpy()
                if lay.value:
                    df[lay.value] = ev["value"].to_numpy(float)
            else:
                wide = ev.groupby([self.key, self.time, "item"], sort=True)["value"].first()
                wide = wide.unstack("item").reindex(columns=list(lay.columns)).reset_index()
                wide.columns.name = None
                df = wide
            extra = [c for c in like.columns if c not in df.columns]
            for c in extra:  # columns the layout does not model (none for inferred layouts)
                df[c] = pd.Series([pd.NA] * len(df), dtype=like[c].dtype)
            df = df[list(like.columns)]
            df = _cast_like(df, like)
            tables[n] = df.reset_index(drop=True)
        return replace(self, tables=tables)

    def subset(self, ids: Any) -> Dataset:
        """The patients whose IDs are in ``ids`` and their events."""
        keep = set(pd.Index(ids).tolist())
        tables = {
            n: df[df[self.key].isin(keep)].reset_index(drop=True) for n, df in self.tables.items()
        }
        return replace(self, tables=tables)

    def split(self, *, holdout: float, seed: int) -> tuple[Dataset, Dataset]:
        """Split by patient into training and holdout datasets."""
        if not 0 < holdout < 1:
            raise DataError(f"holdout must be a fraction between 0 and 1; got {holdout}")
        ids = self.patient_table[self.key].to_numpy()
        if len(ids) < 2:
            raise DataError(
                f"the dataset holds {len(ids)} patient(s); a split by patient needs at least two"
            )
        rng = np.random.default_rng(seed)
        perm = rng.permutation(len(ids))
        n_hold = min(max(1, int(round(holdout * len(ids)))), len(ids) - 1)
        return self.subset(ids[perm[n_hold:]]), self.subset(ids[perm[:n_hold]])

    def roles(self) -> dict[str, Any]:
        """The JSON-ready description of keys, time and roles (no data)."""
        return {
            "key": self.key,
            "time": self.time,
            "patients": self.patients,
            "tables": list(self.tables),
            "layouts": {n: lay.to_dict() for n, lay in self.layouts.items()},
            "end": self.end,
            "death": self.death,
            "sex": self.sex,
            "age": self.age,
            "death_value": _plain(self.death_value),
            "death_event": self.death_event,
            "times_are_dates": self.times_are_dates,
        }

    def died(self, patients: pd.DataFrame | None = None) -> np.ndarray:
        """Boolean per patient row: died at ``end`` per the death column, or has the death event.

        ``patients`` (a patients table of this dataset's tables) defaults to the patients table.
        """
        p = self.patient_table if patients is None else patients
        by_event = pd.notna(self.death_days(p))
        if self.death is None:
            return by_event
        s = p[self.death]
        hit = s == self.death_value
        if pd.api.types.is_bool_dtype(s):
            hit = s == bool(self.death_value)
        return hit.fillna(False).to_numpy(bool) | by_event

    def death_days(self, patients: pd.DataFrame | None = None) -> np.ndarray:
        """Per patient row, the time of its death event (missing without one)."""
        return death_days(self, patients)

    def write(self, folder: str | Path, *, fmt: Literal["csv", "parquet"] = "csv") -> Path:
        """Write each table as ``NAME.csv`` / ``NAME.parquet`` into ``folder`` (atomically)."""
        from healthsynth.data._outputs import atomic_folder

        folder = Path(folder)
        for n in self.tables:
            check_name(n, what="table name")
        with atomic_folder(folder, action="write the tables", kind="dataset") as tmp:
            for n, df in self.tables.items():
                write_table(df, tmp / f"{n}.{fmt}")
        return folder


def _plain(v: Any) -> Any:
    return v.item() if isinstance(v, np.generic) else v


def _cast_like(df: pd.DataFrame, like: pd.DataFrame) -> pd.DataFrame:
    out = df.copy()
    for c in out.columns:
        want = like[c].dtype
        if out[c].dtype == want:
            continue
        try:
            if pd.api.types.is_integer_dtype(want) and out[c].isna().any():
                out[c] = out[c].astype("Int64")
            elif pd.api.types.is_integer_dtype(want):
                out[c] = np.round(pd.to_numeric(out[c])).astype(want)
            else:
                out[c] = out[c].astype(want)
        except (TypeError, ValueError):
            pass
    return out
