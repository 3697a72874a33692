"""Death recorded as an event: finding it in the event tables and checking it is last.

A dataset may record death as an event code (``death``, MEDS's ``MEDS_DEATH``) rather than as a
patients column. :func:`find_death_event` resolves the code (``item`` or ``table/item``) in the
code-layout event tables; :func:`check_death_event` refuses, with one sentence, a code that never
occurs, a patient who dies twice and a patient with events after the death.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd

from healthsynth.errors import DataError

__all__ = [
    "MEDS_DEATH",
    "check_death_event",
    "death_days",
    "death_rows",
    "default_death_event",
    "split_code",
]

#: the death code of MEDS, recognised as a death event by default
MEDS_DEATH = "MEDS_DEATH"


def split_code(code: str, tables: Any) -> tuple[str, str]:
    """``(table, item)`` of a death code; ``("", code)`` when its prefix names no table.

    MEDS codes hold slashes themselves (``ICD10CM/I46.9``), so a prefix that names no table is
    part of the code.
    """
    table, _, item = code.rpartition("/")
    return (table, item) if table and table in tables else ("", code)


def death_rows(
    tables: Mapping[str, pd.DataFrame], layouts: Mapping[str, Any], code: str, patients: str
) -> dict[str, np.ndarray]:
    """Per code table, the rows holding the death event ``code`` (``item`` or ``table/item``)."""
    table, item = split_code(code, tables)
    out: dict[str, np.ndarray] = {}
    for n, df in tables.items():
        lay = layouts.get(n)
        if n == patients or lay is None or lay.layout != "code" or (table and n != table):
            continue
        out[n] = (df[lay.code].astype("string") == item).fillna(False).to_numpy(bool)
    return out


def default_death_event(
    tables: Mapping[str, pd.DataFrame], layouts: Mapping[str, Any], patients: str
) -> str | None:
    """``MEDS_DEATH`` when some code table holds it, else None."""
    rows = death_rows(tables, layouts, MEDS_DEATH, patients)
    return MEDS_DEATH if any(r.any() for r in rows.values()) else None


def check_death_event(
    tables: Mapping[str, pd.DataFrame],
    layouts: Mapping[str, Any],
    *,
    code: str,
    key: str,
    time: str,
    patients: str,
    sources: Mapping[str, str],
) -> None:
    """Refuse a death event that never occurs, occurs twice for a patient, or is not last."""
    rows = death_rows(tables, layouts, code, patients)
    if not any(r.any() for r in rows.values()):
        codes = [n for n, lay in layouts.items() if n != patients and getattr(lay, "code", None)]
        raise DataError(
            f"the death event '{code}' never occurs in the event tables "
            f"({', '.join(codes) or 'none has a code column'}); give a code that occurs there, "
            "or leave the death event out"
        )
    deaths = pd.concat(
        [
            pd.DataFrame({"p": tables[n][key][r].to_numpy(), "t": tables[n][time][r].to_numpy()})
            for n, r in rows.items()
            if r.any()
        ],
        ignore_index=True,
    )
    twice = deaths["p"][deaths["p"].duplicated()]
    if len(twice):
        who = twice.iloc[0]
        raise DataError(
            f"patient ID {who!r} has the death event '{code}' {int((deaths['p'] == who).sum())} "
            f"times ({twice.nunique()} such patients); keep one death per patient"
        )
    died_at = deaths.set_index("p")["t"]
    for n, df in tables.items():
        if n == patients:
            continue
        when = df[key].map(died_at)
        after = when.notna() & (df[time] > when)
        if after.any():
            first = int(np.flatnonzero(after.to_numpy())[0])
            n_patients = df[key][after].nunique()
            raise DataError(
                f"{sources.get(n, f'table {n!r}')} has an event for patient ID "
                f"{df[key].iloc[first]!r} on day {df[time].iloc[first]} after its death event "
                f"'{code}' on day {when.iloc[first]} ({n_patients} patients have events after "
                "death); drop those events or correct the day of death"
            )


def death_days(dataset: Any, patients: pd.DataFrame | None = None) -> np.ndarray:
    """Per patient row, the time of its death event (NaN without one, or without a death event)."""
    p = dataset.patient_table if patients is None else patients
    if dataset.death_event is None:
        return np.full(len(p), np.nan)
    rows = death_rows(dataset.tables, dataset.layouts, dataset.death_event, dataset.patients)
    parts = [
        pd.Series(
            dataset.tables[n][dataset.time][r].to_numpy(), index=dataset.tables[n][dataset.key][r]
        )
        for n, r in rows.items()
        if r.any()
    ]
    if not parts:
        return np.full(len(p), np.nan)
    when = pd.concat(parts)
    when = when[~when.index.duplicated()]
    out = p[dataset.key].map(when)
    return out.to_numpy()
