"""Read a MEDS dataset (Medical Event Data Standard) into a timelines :class:`Dataset`.

A MEDS dataset is a folder with ``data/**/*.parquet`` shards (``subject_id``, ``time``,
``code``, ``numeric_value``, ...) and ``metadata/`` (``codes.parquet``, ``dataset.json``). Each
shard's columns are checked against the ``meds`` package's ``DataSchema``; shards are read one
row group at a time into compact arrays.

How the rows become a dataset (see ``docs/omop.md``):

* rows without a time are static: ``GENDER/x`` gives ``sex``; ``TABLE//column//value`` and
  ``PREFIX/value`` give a text column (``column``, ``prefix`` in lower case);
  ``TABLE//column`` or any other code with a number gives a numeric column;
* ``MEDS_BIRTH`` gives the age at the index date, ``MEDS_DEATH`` the death (and the end of
  follow-up);
* every other timed row is an event whose item is its code: codes that ever carry a
  ``numeric_value`` go to the table ``measurements`` (with ``value``), the others to
  ``events``;
* times become days (fractions kept) from each subject's first event, or from one
  ``index_date``; the end of follow-up is the death, else the last event.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from healthsynth.data._dataset import Dataset, EventTable
from healthsynth.data._prepared import _sex, index_date_of
from healthsynth.errors import DataError, DataFileError, MissingExtraError, ParameterError

__all__ = ["MedsData", "read_meds"]

logger = logging.getLogger(__name__)

_US_PER_DAY = 86_400 * 1_000_000
KEY, TIME, SEX, AGE, END, DIED = "subject_id", "days", "sex", "age", "follow_up_days", "died"


@dataclass(frozen=True)
class MedsData:
    """What :func:`read_meds` returns.

    Attributes
    ----------
    dataset
        Patients (``subject_id``, ``sex``, ``age``, ``follow_up_days``, ``died`` and the other
        static columns) and the event tables ``events`` (``subject_id``, ``days``, ``code``)
        and ``measurements`` (the same plus ``value``), each present when it has rows.
    codes
        One row per ``(table, item)`` with :class:`~healthsynth.knowledge.CodeEntry`'s columns
        (``vocabulary`` and ``code`` split from ``VOCABULARY/CODE``, the description from
        ``metadata/codes.parquet``) and ``events``.
    record
        Counts and timings of the read.
    """

    dataset: Dataset
    codes: pd.DataFrame
    record: dict[str, Any] = field(default_factory=dict)


def read_meds(
    path: str | Path,
    *,
    index_date: str | None = None,
    max_patients: int | None = None,
    seed: int = 0,
) -> MedsData:
    """Read a MEDS dataset folder.

    Parameters
    ----------
    path
        The dataset folder (holding ``data/`` and ``metadata/``).
    index_date
        Day 0 for everybody; default: each subject's first event.
    max_patients
        Keep a random subset of this many subjects (seeded by ``seed``).
    seed
        Seed of the subset.

    Raises
    ------
    DataFileError
        A missing folder, no data shards, a shard that is not Parquet or lacks MEDS columns,
        or codes that are not UTF-8.
    DataError
        Fewer than two subjects with events.
    MissingExtraError
        The ``meds`` package is not installed (the ``omop`` or ``timelines`` extra).
    """
    started = time.perf_counter()
    try:
        import meds
    except ModuleNotFoundError as e:
        if e.name and e.name.split(".")[0] != "meds":
            raise
        raise MissingExtraError("meds", "omop", "Reading a MEDS dataset") from None
    if max_patients is not None and (
        isinstance(max_patients, bool) or not isinstance(max_patients, int) or max_patients < 2
    ):
        raise ParameterError(
            f"max_patients must be a whole number of at least 2; got {max_patients!r}"
        )
    root = Path(path)
    shards = _shards(root, meds)
    fixed = _index_us(index_date)
    subject, when, code_ix, value = _read_shards(shards, meds)
    codes_seen = code_ix.pop("__names__")
    names = np.array(codes_seen, dtype=object)
    rows = pd.DataFrame(
        {"subject": subject, "when": when, "code": code_ix["codes"], "value": value}
    )
    ids = np.unique(subject)
    if max_patients is not None and max_patients < len(ids):
        keep = np.sort(np.random.default_rng(seed).choice(ids, max_patients, replace=False))
        rows = rows[np.isin(rows["subject"].to_numpy(), keep)]
        ids = keep
    birth_code = _index_of(codes_seen, meds.birth_code)
    death_code = _index_of(codes_seen, meds.death_code)
    timed = rows["when"].notna()
    special = rows["code"].isin([c for c in (birth_code, death_code) if c is not None])
    ev = rows[timed & ~special]
    first = ev.groupby("subject")["when"].min()
    last = ev.groupby("subject")["when"].max()
    births = rows[rows["code"] == birth_code].groupby("subject")["when"].min()
    deaths = rows[rows["code"] == death_code].groupby("subject")["when"].min()
    # without an index date for everybody, a subject's first event is day 0: subjects
    # without events have no timeline and are left out
    with_events = ids if fixed is not None else ids[np.isin(ids, first.index.to_numpy())]
    if len(with_events) < 2 or not len(ev):
        raise DataError(
            f"MEDS dataset {root} has {len(first)} subject(s) with timed events; "
            "healthsynth needs at least two subjects with events to learn from"
        )
    index = (
        pd.Series(fixed, index=with_events, dtype=float)
        if fixed is not None
        else first.reindex(with_events).astype(float)
    )
    patients = _patients(with_events, index, births=births, deaths=deaths, last=last)
    static = rows[~timed & rows["subject"].isin(with_events)]
    patients = _static_columns(patients, static, names)
    tables = {
        "patients": patients,
        **_event_tables(ev[ev["subject"].isin(with_events)], index, names),
    }
    dataset = _dataset(tables, root)
    codes = _codes(root, meds, dataset)
    record = {
        "shards": len(shards),
        "subjects": int(len(np.unique(subject))),
        "subjects_read": int(len(with_events)),
        "subjects_without_events": int(len(ids) - len(with_events)),
        "events": {n: int(len(t)) for n, t in tables.items() if n != "patients"},
        "index": f"fixed {index_date}" if fixed is not None else "first event",
        "seconds": round(time.perf_counter() - started, 3),
    }
    return MedsData(dataset=dataset, codes=codes, record=record)


def _shards(root: Path, meds: Any) -> list[Path]:
    """The Parquet data shards of the MEDS folder ``root``; a clear error when there are none."""
    if not root.is_dir():
        raise DataFileError(f"MEDS dataset folder {root} does not exist; give the folder path")
    data_dir = root / meds.data_subdirectory
    shards = sorted(data_dir.rglob("*.parquet")) if data_dir.is_dir() else []
    if not shards:
        raise DataFileError(
            f"MEDS dataset folder {root} has no data shards ({meds.data_subdirectory}/**/*.parquet)"
            "; give the folder that holds data/ and metadata/"
        )
    return shards


def _patients(
    with_events: np.ndarray,
    index: pd.Series,
    *,
    births: pd.Series,
    deaths: pd.Series,
    last: pd.Series,
) -> pd.DataFrame:
    """One row per subject: the end of follow-up (death, else the last event), death and age."""
    patients = pd.DataFrame({KEY: with_events.astype(np.int64)})
    death = deaths.reindex(with_events).astype(float)
    end_us = death.where(death.notna(), last.reindex(with_events).astype(float))
    patients[END] = ((end_us - index) / _US_PER_DAY).to_numpy()
    patients[DIED] = death.notna().to_numpy().astype(np.int64)
    age = (index - births.reindex(with_events).astype(float)) / (_US_PER_DAY * 365.25)
    patients[AGE] = np.round(age.to_numpy(float), 1)
    return patients


def _dataset(tables: dict[str, pd.DataFrame], root: Path) -> Dataset:
    """The dataset of the patients table and the event tables (code layouts)."""
    patients = tables["patients"]
    return Dataset.from_tables(
        tables,
        key=KEY,
        time=TIME,
        end=END,
        death=DIED,
        sex=SEX if SEX in patients else None,
        age=AGE,
        layouts={
            n: EventTable("code", code="code", value="value" if n == "measurements" else None)
            for n in tables
            if n != "patients"
        },
        sources={n: f"MEDS dataset {root} ({n})" for n in tables},
    )


def _event_tables(ev: pd.DataFrame, index: pd.Series, names: np.ndarray) -> dict[str, pd.DataFrame]:
    """``events`` (codes without numbers) and ``measurements`` (codes that carry numbers)."""
    days = (ev["when"].to_numpy(float) - index.reindex(ev["subject"]).to_numpy()) / _US_PER_DAY
    if np.all(np.abs(days - np.round(days)) < 1e-9):
        days = np.round(days).astype(np.int64)
    item = names[ev["code"].to_numpy()]
    has_value = ev.groupby("code")["value"].apply(lambda v: v.notna().any())
    numeric = ev["code"].map(has_value).to_numpy(bool)
    tables: dict[str, pd.DataFrame] = {}
    base = pd.DataFrame({KEY: ev["subject"].to_numpy(np.int64), TIME: days, "code": item})
    if (~numeric).any():
        tables["events"] = base[~numeric].reset_index(drop=True)
    if numeric.any():
        m = base[numeric].reset_index(drop=True)
        m["value"] = ev["value"].to_numpy(float)[numeric]
        tables["measurements"] = m
    return tables


def _read_shards(shards: list[Path], meds: Any) -> tuple:
    """All rows as arrays: subject, time (µs, NaN when static), code index, value."""
    names: dict[str, int] = {}
    subject, when, code, value = [], [], [], []
    need = ("subject_id", "time", "code", "numeric_value")
    for shard in shards:
        try:
            f = pq.ParquetFile(shard)
        except Exception as e:  # pyarrow raises several types for files that are not Parquet
            detail = " ".join(str(e).split())
            raise DataFileError(
                f"MEDS data shard {shard} is not a readable Parquet file ({detail})"
            ) from None
        cols = f.schema_arrow.names
        lacking = [c for c in need if c not in cols]
        if lacking:
            raise DataFileError(
                f"MEDS data shard {shard} lacks the column(s) {', '.join(lacking)} of the MEDS "
                f"data schema ({', '.join(meds.DataSchema.schema().names)})"
            )
        for i in range(f.num_row_groups):
            t = f.read_row_group(i, columns=list(need))
            try:
                t = meds.DataSchema.align(t)
            except Exception as e:  # meds raises its own and pyarrow errors for bad types
                raise DataFileError(
                    f"MEDS data shard {shard} does not match the MEDS data schema "
                    f"({' '.join(str(e).split())[:200]})"
                ) from None
            codes_col = t.column("code").combine_chunks()
            try:
                codes_col.validate(full=True)
            except pa.ArrowInvalid:
                raise DataFileError(
                    f"MEDS data shard {shard} holds codes that are not valid UTF-8; re-encode "
                    "the code column as UTF-8"
                ) from None
            dict_codes = codes_col.dictionary_encode()
            local = [
                names.setdefault(str(c), len(names)) for c in dict_codes.dictionary.to_pylist()
            ]
            ix = np.asarray(local, dtype=np.int32)[
                dict_codes.indices.to_numpy(zero_copy_only=False)
            ]
            subject.append(t.column("subject_id").to_numpy().astype(np.int64))
            ts = t.column("time").cast(pa.int64())
            when.append(ts.to_numpy(zero_copy_only=False).astype(float))
            code.append(ix)
            value.append(t.column("numeric_value").to_numpy(zero_copy_only=False).astype(float))
    cat = np.concatenate
    return (
        cat(subject),
        cat(when),
        {"codes": cat(code), "__names__": list(names)},
        cat(value),
    )


def _static_columns(
    patients: pd.DataFrame, static: pd.DataFrame, names: np.ndarray
) -> pd.DataFrame:
    """Static rows as patients columns (one value per subject and column; the first wins)."""
    if not len(static):
        return patients
    code = pd.Series(names[static["code"].to_numpy()], index=static.index)
    column: list[str] = []
    text: list[str | None] = []
    for c, v in zip(code, static["value"], strict=True):
        if c.startswith("GENDER/"):
            column.append(SEX)
            text.append(_sex(c.split("/", 1)[1]))  # female/male; other values as written
        elif "//" in c:
            parts = c.split("//")
            column.append(parts[1] if len(parts) > 1 else parts[0])
            text.append(parts[2] if len(parts) > 2 else None)
        elif "/" in c and v != v:
            prefix, rest = c.split("/", 1)
            column.append(prefix.lower())
            text.append(rest)
        else:
            column.append(c)
            text.append(None)
    long = pd.DataFrame(
        {
            "subject": static["subject"].to_numpy(),
            "column": column,
            "text": text,
            "value": static["value"].to_numpy(float),
        }
    )
    long = long.drop_duplicates(["subject", "column"], keep="first")
    out = patients.set_index(KEY)
    for col, g in long.groupby("column", sort=False):
        name = str(col)
        if name in out.columns and name != SEX:
            name = f"static_{name}"
        if g["text"].notna().any():
            out[name] = g.set_index("subject")["text"].reindex(out.index)
        else:
            out[name] = g.set_index("subject")["value"].reindex(out.index)
    return out.reset_index()


def _codes(root: Path, meds: Any, dataset: Dataset) -> pd.DataFrame:
    """The code map frame: one row per (table, item), with descriptions from codes.parquet."""
    described: dict[str, str] = {}
    meta = root / meds.code_metadata_filepath
    if meta.is_file():
        try:
            t = pq.read_table(meta, columns=["code", "description"])
            described = {
                str(c): str(d)
                for c, d in zip(
                    t.column("code").to_pylist(), t.column("description").to_pylist(), strict=True
                )
                if c is not None and d is not None
            }
        except Exception:  # an unreadable metadata file only loses the descriptions
            logger.warning("MEDS metadata %s is unreadable; codes get no descriptions", meta)
    counts = dataset.events().groupby(["table", "item"], sort=True).size()
    rows = []
    for (table, item), n in counts.items():
        vocab, code = "", item
        if "/" in item and "//" not in item:
            vocab, code = item.split("/", 1)
        rows.append(
            {
                "table": table,
                "item": item,
                "vocabulary": vocab,
                "code": code,
                "description": described.get(item, item),
                "unit": None,
                "low": np.nan,
                "high": np.nan,
                "note": f"read from MEDS dataset {root.name}: {n} events",
                "events": int(n),
            }
        )
    return pd.DataFrame(rows)


def _index_of(names: list[str], code: str) -> int | None:
    try:
        return names.index(code)
    except ValueError:
        return None


def _index_us(value: str | None) -> float | None:
    """A fixed index date as microseconds since 1970, or None."""
    if value is None:
        return None
    return float(index_date_of(value).astype("datetime64[us]").astype(np.int64))
