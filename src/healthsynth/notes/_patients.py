"""Patients to write notes about: rows of a table, or whole timelines (patients row + events).

A source is proven synthetic only by the run record that ``healthsynth sample`` writes next to
its output (``FILE.run.json`` beside a table, ``run.json`` inside a timeline folder), and only
while the data are not newer than that record. Anything else (a file without a record, a
DataFrame, a :class:`~healthsynth.data.Dataset`) is treated as real patients.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from healthsynth.errors import DataError, DataFileError, ParameterError

__all__ = ["Patient", "PatientSource", "provenance", "read_patients"]

#: column names taken for identifiers when no schema says which columns are
_ID_NAMES = {"id", "patient_id", "patientid", "subject_id", "person_id", "mrn", "record_id"}
#: seconds the data may be newer than its run record (file systems round times)
_MTIME_SLACK = 2.0


@dataclass(frozen=True)
class Patient:
    """One patient as the prompt and the checks see it.

    Parameters
    ----------
    id
        The patient's (synthetic) identifier, or its row number; kept in the output, never sent.
    attributes
        Column -> value of the patient's row (identifiers left out; JSON-ready values).
    events
        The patient's events in time order, each ``{"day", "table", "item", "value"}``;
        ``day`` counts days from the index date (dates become days from the first event).
    events_total
        How many events the patient has (``events`` may hold only the first ones).
    """

    id: str
    attributes: dict[str, Any]
    events: tuple[dict[str, Any], ...] = ()
    events_total: int = 0

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form (what each line of the notes file carries as ``patient``)."""
        out: dict[str, Any] = {"id": self.id, "attributes": dict(self.attributes)}
        if self.events or self.events_total:
            out["events"] = [dict(e) for e in self.events]
            out["events_total"] = self.events_total
        return out

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> Patient:
        """Inverse of :meth:`to_dict`."""
        events = tuple(dict(e) for e in d.get("events") or ())
        return cls(
            id=str(d.get("id")),
            attributes=dict(d.get("attributes") or {}),
            events=events,
            events_total=int(d.get("events_total", len(events))),
        )


@dataclass(frozen=True)
class PatientSource:
    """The patients of one source and what is known about where they came from."""

    patients: list[Patient]
    synthetic: bool
    evidence: str
    layout: str  # "table" | "timelines"
    path: str | None = None
    columns: list[str] = field(default_factory=list)


def _plain(v: Any) -> Any:
    if v is None or v is pd.NA or v is pd.NaT:
        return None
    if isinstance(v, np.generic):
        v = v.item()
    if isinstance(v, float) and not math.isfinite(v):
        return None
    if isinstance(v, (pd.Timestamp, datetime, date)):
        return v.isoformat()[:10]
    return v


def _data_mtime(path: Path) -> float:
    if path.is_dir():
        times = [p.stat().st_mtime for p in path.iterdir() if p.suffix in (".csv", ".parquet")]
        return max(times, default=0.0)
    return path.stat().st_mtime


def provenance(path: str | Path) -> tuple[bool, str, dict[str, Any] | None]:
    """Whether ``path`` is proven synthetic, in words, and its run record.

    The proof is the run record ``healthsynth sample`` writes next to what it samples: it must
    say ``"command": "sample"``, name this file (or folder) as its output, and be no older than
    the data. A sampled file copied without its record, or edited afterwards, counts as real.
    """
    path = Path(path)
    run = path / "run.json" if path.is_dir() else path.with_name(path.name + ".run.json")
    if not run.is_file():
        return False, f"no run record {run.name} from `healthsynth sample` next to it", None
    try:
        record = json.loads(run.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False, f"its run record {run} cannot be read", None
    if not isinstance(record, dict) or record.get("command") != "sample":
        return False, f"{run} is not the run record of `healthsynth sample`", None
    if Path(str(record.get("output", ""))).name != path.name:
        return False, f"{run} describes another output ({record.get('output')!r})", None
    if _data_mtime(path) > run.stat().st_mtime + _MTIME_SLACK:
        return False, f"the data changed after its run record {run.name} was written", None
    return True, f"run record {run} (healthsynth sample from model {record.get('model')})", record


def _identifier_columns(df: pd.DataFrame, record: Mapping[str, Any] | None) -> list[str]:
    """Identifier columns: from the sampling model's schema when there is one, else by name."""
    model = (record or {}).get("model")
    if model:
        try:
            from healthsynth.data import Schema

            schema = Schema.load(Path(str(model)) / "schema.json")
            return [c.name for c in schema.columns if c.kind == "identifier" and c.name in df]
        except Exception:  # noqa: BLE001 - the model folder may have moved: fall back to names
            pass
    out = []
    for c in df.columns:
        low = str(c).lower()
        if low in _ID_NAMES or low.endswith(("_id", ".id")):
            out.append(str(c))
    return out


def _table_patients(df: pd.DataFrame, ids: list[str], source: str) -> list[Patient]:
    if len(df) == 0:
        raise DataError(f"{source} has no rows; there is no patient to write a note about")
    keep = [c for c in df.columns if c not in ids]
    if not keep:
        raise DataError(f"{source} has only identifier columns ({', '.join(ids)}); no facts")
    id_values = df[ids[0]].tolist() if ids else list(range(len(df)))
    values = df[keep].astype(object).to_numpy()
    return [
        Patient(
            id=str(_plain(pid)),
            attributes={str(c): _plain(v) for c, v in zip(keep, row, strict=True)},
        )
        for pid, row in zip(id_values, values, strict=True)
    ]


def _timeline_patients(ds: Any, max_events: int) -> list[Patient]:
    p = ds.patient_table
    ev = ds.events()
    t = ev[ds.time]
    if ds.times_are_dates:
        t = pd.to_datetime(t)
        first = t.groupby(ev[ds.key]).transform("min")
        ev = ev.assign(_day=(t - first).dt.days.astype(int))
    else:
        ev = ev.assign(_day=pd.to_numeric(t))
    by_key: dict[Any, list[dict[str, Any]]] = {}
    for k, day, table, item, value in zip(
        ev[ds.key], ev["_day"], ev["table"], ev["item"], ev["value"], strict=True
    ):
        by_key.setdefault(k, []).append(
            {"day": _plain(day), "table": str(table), "item": str(item), "value": _plain(value)}
        )
    keep = [c for c in p.columns if c != ds.key]
    out = []
    for k, row in zip(p[ds.key], p[keep].astype(object).to_numpy(), strict=True):
        events = by_key.get(k, [])
        out.append(
            Patient(
                id=str(_plain(k)),
                attributes={str(c): _plain(v) for c, v in zip(keep, row, strict=True)},
                events=tuple(events[:max_events]),
                events_total=len(events),
            )
        )
    if not out:
        raise DataError("the patients table has no rows; there is no patient to write a note about")
    return out


def _roles_from_model(model: str | Path) -> dict[str, Any]:
    from healthsynth.generators._folder import check_folder

    folder, meta = check_folder(model)
    template = meta.get("template")
    if not isinstance(template, dict) or "roles" not in template:
        raise ParameterError(f"model folder {folder} does not hold a timeline model")
    return dict(template["roles"])


def _read_folder(
    folder: Path,
    *,
    record: Mapping[str, Any] | None,
    model: str | Path | None,
    key: str | None,
    time: str | None,
    patients: str,
) -> Any:
    from healthsynth.data import Dataset

    files = {p.stem: p for p in sorted(folder.iterdir()) if p.suffix in (".csv", ".parquet")}
    if not files:
        raise DataFileError(f"timeline folder {folder} holds no .csv or .parquet table")
    roles: dict[str, Any] = {}
    if key is None and (model is not None or (record or {}).get("model")):
        roles = _roles_from_model(model if model is not None else str(record["model"]))  # type: ignore[index]
    elif key is None or time is None:
        raise ParameterError(
            f"timeline folder {folder} has no run record naming its model: give the model folder "
            "(model=, --model) or the patient ID and time columns (key= and time=, --key/--time)"
        )
    else:
        roles = {"key": key, "time": time, "patients": patients, "tables": list(files)}
    names = [t for t in roles.get("tables", files) if t in files]
    patients_name = roles.get("patients") or patients
    if patients_name not in files:
        raise DataFileError(
            f"timeline folder {folder} has no {patients_name}.csv or {patients_name}.parquet "
            f"patients table; it holds: {', '.join(files)}"
        )
    names = [patients_name] + [n for n in names if n != patients_name]
    return Dataset.read(
        {n: files[n] for n in names},
        key=roles["key"],
        time=roles["time"],
        patients=patients_name,
        sex=roles.get("sex"),
        age=roles.get("age"),
    )


def read_patients(
    source: str | Path | pd.DataFrame | Any,
    *,
    model: str | Path | None = None,
    key: str | None = None,
    time: str | None = None,
    patients: str = "patients",
    id_column: str | None = None,
    max_events: int = 100,
    encoding: str = "utf-8",
) -> PatientSource:
    """Read the patients of a table or a timeline folder, and whether they are proven synthetic.

    Parameters
    ----------
    source
        A CSV or Parquet file (one patient per row), a folder of timeline tables (a patients
        table and event tables), a DataFrame or a :class:`~healthsynth.data.Dataset`.
    model
        For a timeline folder: the model folder that sampled it, whose settings name the key,
        time and tables (default: the model its ``run.json`` names).
    key, time, patients
        For a timeline folder without a model: the patient ID column, the time column (days
        from an index date, or dates) and the patients table's name.
    id_column
        The identifier column of a table (default: the sampling model's identifiers, else a
        column named ``id``, ``patient_id``, ``*_id`` ...). Identifiers are never sent.
    max_events
        The most events of one patient given to the model (the first ones in time).
    encoding
        Text encoding of CSV files.
    """
    from healthsynth.data import Dataset, read_table

    if isinstance(source, pd.DataFrame):
        ids = [id_column] if id_column else _identifier_columns(source, None)
        return PatientSource(
            _table_patients(source, ids, "the table"),
            synthetic=False,
            evidence="a DataFrame carries no run record from `healthsynth sample`",
            layout="table",
            columns=[str(c) for c in source.columns if c not in ids],
        )
    if isinstance(source, Dataset):
        return PatientSource(
            _timeline_patients(source, max_events),
            synthetic=False,
            evidence="a Dataset carries no run record from `healthsynth sample`",
            layout="timelines",
            columns=[c for c in source.patient_table.columns if c != source.key],
        )
    path = Path(source)
    if not path.exists():
        raise DataFileError(f"data file {path} does not exist")
    synthetic, evidence, record = provenance(path)
    if path.is_dir():
        ds = _read_folder(path, record=record, model=model, key=key, time=time, patients=patients)
        return PatientSource(
            _timeline_patients(ds, max_events),
            synthetic=synthetic,
            evidence=evidence,
            layout="timelines",
            path=str(path),
            columns=[c for c in ds.patient_table.columns if c != ds.key],
        )
    df = read_table(path, encoding=encoding)
    if id_column is not None and id_column not in df.columns:
        raise ParameterError(
            f"id column '{id_column}' is not in data file {path}; its columns are: "
            f"{', '.join(map(str, df.columns))}"
        )
    ids = [id_column] if id_column else _identifier_columns(df, record)
    return PatientSource(
        _table_patients(df, ids, f"data file {path}"),
        synthetic=synthetic,
        evidence=evidence,
        layout="table",
        path=str(path),
        columns=[str(c) for c in df.columns if c not in ids],
    )


def iter_chunks(items: list[Any], size: int) -> Iterator[list[Any]]:
    """``items`` in consecutive lists of at most ``size``."""
    for i in range(0, len(items), size):
        yield items[i : i + size]
