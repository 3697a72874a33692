"""The checks a dataset's tables pass when it is built: IDs, patients, times and layouts."""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import pandas as pd

from healthsynth.data._layout import EventTable, infer_layout
from healthsynth.data._names import check_name
from healthsynth.errors import DataError

__all__ = ["check_event_tables", "check_patients", "check_tables", "check_times", "time_kind"]


def check_tables(
    tables: Mapping[str, pd.DataFrame],
    *,
    key: str,
    patients: str | None,
    sources: Mapping[str, str] | None,
) -> tuple[str, dict[str, str]]:
    """The patients table's name and each table's name for messages, once the tables pass.

    The tables must be DataFrames with plain names, at least two, each holding ``key``;
    ``patients`` defaults to the first table.
    """
    if not tables:
        raise DataError("a dataset needs a patients table and at least one event table")
    names = list(tables)
    for n in names:
        given = (sources or {}).get(n)
        check_name(n, what="table name", where=f"(for {given})" if given else "")
    patients = patients or names[0]
    src = {n: (sources or {}).get(n, f"table '{n}'") for n in names}
    if patients not in tables:
        raise DataError(
            f"the patients table '{patients}' is not among the tables: {', '.join(names)}"
        )
    if len(tables) < 2:
        raise DataError(f"{src[patients]} is the only table; give at least one event table as well")
    for n, df in tables.items():
        if not isinstance(df, pd.DataFrame):
            raise DataError(f"{src[n]} must be a pandas DataFrame; got {type(df).__name__}")
        if key not in df.columns:
            raise DataError(
                f"{src[n]} has no patient ID column '{key}'; its columns are: "
                f"{', '.join(map(str, df.columns))}"
            )
    return patients, src


def check_patients(
    p: pd.DataFrame, *, key: str, source: str, columns: tuple[str | None, ...]
) -> None:
    """Check the patients table: rows, IDs present and unique, at least two patients.

    ``columns`` are the end, death, sex and age columns (each None when not given); those given
    must be in the table.
    """
    if len(p) == 0:
        raise DataError(f"{source} has no rows")
    if p[key].isna().any():
        raise DataError(f"{source} has a missing patient ID in column '{key}'")
    dup = p[key][p[key].duplicated()]
    if len(dup):
        raise DataError(
            f"{source} lists patient ID {dup.iloc[0]!r} more than once "
            f"({int(p[key].duplicated().sum())} duplicate IDs in column '{key}'); the patients "
            "table needs one row per patient"
        )
    if len(p) < 2:
        raise DataError(
            f"{source} holds one patient; a generator needs several patients to learn from"
        )
    for col, what in zip(columns, ("end", "death", "sex", "age"), strict=True):
        if col is not None and col not in p.columns:
            raise DataError(
                f"the {what} column '{col}' is not in {source}; its columns are: "
                f"{', '.join(map(str, p.columns))}"
            )


def check_event_tables(
    tables: Mapping[str, pd.DataFrame],
    *,
    key: str,
    time: str,
    patients: str,
    layouts: Mapping[str, EventTable] | None,
    sources: Mapping[str, str],
) -> tuple[dict[str, pd.DataFrame], dict[str, EventTable]]:
    """The tables with checked times and fresh indexes, and every event table's layout.

    Event tables must have rows, the time column, and only patients of the patients table;
    times must be numbers in every table or dates in every table. Layouts not given are
    inferred.
    """
    src = sources
    known = set(tables[patients][key].tolist())
    layouts = dict(layouts or {})
    clean: dict[str, pd.DataFrame] = {patients: tables[patients].reset_index(drop=True)}
    for n, df in tables.items():
        if n == patients:
            continue
        if len(df) == 0:
            raise DataError(f"{src[n]} has no rows; drop it or give it events")
        if time not in df.columns:
            raise DataError(
                f"{src[n]} has no time column '{time}'; its columns are: "
                f"{', '.join(map(str, df.columns))}"
            )
        df = df.copy()
        df[time] = check_times(df[time], src[n], time)
        if df[key].isna().any():
            raise DataError(f"{src[n]} has a missing patient ID in column '{key}'")
        unknown = ~df[key].isin(known)
        if unknown.any():
            raise DataError(
                f"{src[n]} has events for patient ID {df[key][unknown].iloc[0]!r}, which is "
                f"not in {src[patients]} ({int(unknown.sum())} such rows); add the patient or "
                "drop the events"
            )
        layout = layouts.get(n) or infer_layout(df, key=key, time=time, source=src[n])
        clean[n] = df.reset_index(drop=True)
        layouts[n] = layout
    kinds = {n: time_kind(clean[n][time]) for n in clean if n != patients}
    if len(set(kinds.values())) > 1:
        raise DataError(
            f"the time column '{time}' holds numbers in some tables and dates in others "
            f"({', '.join(f'{n}: {k}' for n, k in kinds.items())}); use one kind throughout"
        )
    return clean, layouts


def check_times(s: pd.Series, source: str, time: str) -> pd.Series:
    """Numbers or dates; anything else is a :class:`DataError` naming a bad value."""
    if s.isna().any():
        row = int(np.flatnonzero(s.isna())[0])
        raise DataError(
            f"{source} has a missing time in column '{time}' (row {row}); every event needs a time"
        )
    if isinstance(s.dtype, pd.CategoricalDtype):
        s = s.astype(object)
    if pd.api.types.is_bool_dtype(s):
        raise DataError(f"{source} column '{time}' holds true/false values, not times")
    if pd.api.types.is_timedelta64_dtype(s):
        raise DataError(
            f"{source} column '{time}' holds durations; give them as numbers of days "
            "(e.g. durations / pd.Timedelta(days=1))"
        )
    if pd.api.types.is_complex_dtype(s):
        raise DataError(f"{source} column '{time}' holds complex numbers, not times")
    if pd.api.types.is_datetime64_any_dtype(s):
        return s
    if pd.api.types.is_numeric_dtype(s):
        return _finite_days(s, source, time)
    flags = s.map(lambda v: isinstance(v, (bool, np.bool_)))
    if flags.any():
        raise DataError(
            f"{source} column '{time}' holds the true/false value {s[flags].iloc[0]!r}, not a time"
        )
    as_num = pd.to_numeric(s, errors="coerce")
    if as_num.notna().all():
        return _finite_days(as_num, source, time)
    as_date = pd.to_datetime(s, errors="coerce", format="mixed")
    neither = as_num.isna() & as_date.isna()
    if neither.any():
        raise DataError(
            f"{source} column '{time}' holds {s[neither].iloc[0]!r}, which is neither a number "
            "of days nor a date; give days relative to an index date or dates such as 2021-03-04"
        )
    if as_num.notna().any():
        raise DataError(
            f"{source} column '{time}' mixes numbers such as {s[as_num.notna()].iloc[0]!r} with "
            f"dates such as {s[as_num.isna()].iloc[0]!r}; give every time as a number of days "
            "relative to an index date, or every time as a date"
        )
    return as_date


def _finite_days(s: pd.Series, source: str, time: str) -> pd.Series:
    """Numeric times as int64/float64 (narrow floats widened); infinite values are an error."""
    if pd.api.types.is_bool_dtype(s):
        raise DataError(f"{source} column '{time}' holds true/false values, not times")
    if pd.api.types.is_complex_dtype(s):
        raise DataError(f"{source} column '{time}' holds complex numbers, not times")
    if pd.api.types.is_float_dtype(s) and s.dtype != np.float64:
        s = s.astype(np.float64)
    if not np.isfinite(s.to_numpy(float)).all():
        raise DataError(f"{source} column '{time}' holds an infinite time")
    return s


def time_kind(s: pd.Series) -> str:
    return "dates" if pd.api.types.is_datetime64_any_dtype(s) else "days"
