"""The multi-table Dataset: round trips through the long event frame, splits, and bad input.

Bad inputs are built from small slices of the real NAFLD tables.
"""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from healthsynth.data import Dataset, load_timelines
from healthsynth.errors import DataError

_CACHE: dict[str, Dataset] = {}


def timelines(name: str, n: int | None = None) -> Dataset:
    if (name, n) not in _CACHE:
        _CACHE[(name, n)] = load_timelines(name, max_patients=n, seed=1)
    return _CACHE[(name, n)]


def nafld_slice(n: int = 6) -> dict[str, pd.DataFrame]:
    """The first ``n`` patients of a NAFLD subset that have both comorbidities and labs."""
    ds = timelines("nafld", 200)
    both = set(ds.tables["events"]["id"]) & set(ds.tables["labs"]["id"])
    ids = [i for i in ds.patient_table["id"] if i in both][:n]
    sub = ds.subset(ids)
    return {name: df.copy() for name, df in sub.tables.items()}


def build(tables: dict[str, pd.DataFrame], **kwargs) -> Dataset:
    kwargs = {"key": "id", "time": "days", **kwargs}
    return Dataset.from_tables(tables, **kwargs)


def sorted_frame(df: pd.DataFrame) -> pd.DataFrame:
    return df.sort_values(list(df.columns), kind="stable").reset_index(drop=True)


# -- round trips and splits ------------------------------------------------------------------


@pytest.mark.parametrize("name", ["nafld", "pbcseq"])
def test_events_round_trip(name):
    ds = timelines(name, 150)
    events = ds.events()
    assert list(events.columns) == [ds.key, ds.time, "table", "item", "value"]
    back = ds.with_events(ds.patient_table, events)
    assert list(back.tables) == list(ds.tables)
    pd.testing.assert_frame_equal(back.patient_table, ds.patient_table)
    for n in ds.event_tables:
        got, want = back.tables[n], ds.tables[n]
        assert list(got.columns) == list(want.columns)
        assert (got.dtypes == want.dtypes).all(), n
        pd.testing.assert_frame_equal(sorted_frame(got), sorted_frame(want))


def test_events_frame_is_long_and_ordered():
    ds = timelines("pbcseq", 40)
    events = ds.events()
    visits = ds.tables["visits"]
    assert len(events) == int(visits.drop(columns=["id", "day"]).notna().sum().sum())
    assert set(events["item"]) <= set(ds.layouts["visits"].columns)
    assert events[["id", "day"]].apply(tuple, axis=1).is_monotonic_increasing


def test_split_by_patient_is_disjoint():
    ds = timelines("nafld", 200)
    train, hold = ds.split(holdout=0.25, seed=3)
    a, b = set(train.patient_table["id"]), set(hold.patient_table["id"])
    assert a.isdisjoint(b) and a | b == set(ds.patient_table["id"])
    assert len(b) == 50
    for part, ids in ((train, a), (hold, b)):
        for n in part.event_tables:
            assert set(part.tables[n]["id"]) <= ids
    assert set(train.events()["id"]).isdisjoint(hold.events()["id"])
    again, _ = ds.split(holdout=0.25, seed=3)
    assert list(again.patient_table["id"]) == list(train.patient_table["id"])
    # two patients and a large holdout still leave one patient on each side
    two = ds.subset(ds.patient_table["id"].iloc[:2])
    t, h = two.split(holdout=0.9, seed=0)
    assert t.n_patients == 1 and h.n_patients == 1
    with pytest.raises(DataError, match="holdout must be a fraction"):
        ds.split(holdout=1.0, seed=0)
    with pytest.raises(DataError, match="at least two"):
        ds.subset(ds.patient_table["id"].iloc[:1]).split(holdout=0.5, seed=0)


# -- bad input ----------------------------------------------------------------------------------


def test_events_of_unknown_patients():
    t = nafld_slice()
    t["labs"].loc[t["labs"].index[0], "id"] = 999_999
    with pytest.raises(DataError, match=r"table 'labs' has events for patient ID 999999, which is"):
        build(t)


def test_times_that_are_neither_numbers_nor_dates():
    t = nafld_slice()
    t["events"]["days"] = t["events"]["days"].astype(object)
    t["events"].loc[t["events"].index[1], "days"] = "soon"
    with pytest.raises(DataError, match=r"'soon', which is neither a number of days nor a date"):
        build(t)
    t = nafld_slice()
    t["events"]["days"] = "x" + t["events"]["days"].astype(str)
    with pytest.raises(DataError, match="neither a number of days nor a date"):
        build(t)


def test_times_mixing_numbers_and_dates_in_one_column():
    t = nafld_slice()
    t["events"]["days"] = t["events"]["days"].astype(object)
    t["events"].loc[t["events"].index[0], "days"] = "2020-03-04"
    with pytest.raises(DataError, match="mixes numbers such as .* with dates such as '2020-03-04'"):
        build(t)


@pytest.mark.parametrize(
    ("junk", "message"),
    [
        (True, "true/false"),
        (pd.Timedelta(days=2), "durations"),
        (1 + 2j, "complex numbers"),
        (np.inf, "infinite time"),
        (None, "missing time"),
    ],
)
def test_times_of_the_wrong_kind(junk, message):
    t = nafld_slice()
    days = t["labs"]["days"]
    t["labs"]["days"] = pd.Series([junk] * len(days), index=days.index)
    with pytest.raises(DataError, match=message):
        build(t)


def test_empty_event_table():
    t = nafld_slice()
    t["labs"] = t["labs"].iloc[:0]
    with pytest.raises(DataError, match="table 'labs' has no rows; drop it or give it events"):
        build(t)


def test_one_patient():
    t = nafld_slice()
    pid = t["patients"]["id"].iloc[0]
    t = {n: df[df["id"] == pid] for n, df in t.items()}
    with pytest.raises(DataError, match="holds one patient; a generator needs several"):
        build(t)


def test_duplicate_patient_ids():
    t = nafld_slice()
    t["patients"] = pd.concat([t["patients"], t["patients"].iloc[:1]], ignore_index=True)
    pid = t["patients"]["id"].iloc[0]
    with pytest.raises(DataError, match=f"lists patient ID {pid} more than once"):
        build(t)


def test_missing_key_column():
    t = nafld_slice()
    t["labs"] = t["labs"].rename(columns={"id": "patient"})
    with pytest.raises(DataError, match="table 'labs' has no patient ID column 'id'"):
        build(t)
    t = nafld_slice()
    t["patients"] = t["patients"].drop(columns="id")
    with pytest.raises(DataError, match="table 'patients' has no patient ID column 'id'"):
        build(t)


def test_missing_time_column():
    t = nafld_slice()
    t["events"] = t["events"].drop(columns="days")
    with pytest.raises(DataError, match="table 'events' has no time column 'days'; its columns"):
        build(t)


def test_number_and_date_times_across_tables():
    t = nafld_slice()
    t["labs"]["days"] = pd.Timestamp("2020-01-01") + pd.to_timedelta(t["labs"]["days"], unit="D")
    with pytest.raises(DataError, match="holds numbers in some tables and dates in others"):
        build(t)


def test_other_bad_tables():
    t = nafld_slice()
    with pytest.raises(DataError, match="patients table 'people' is not among"):
        build(t, patients="people")
    with pytest.raises(DataError, match="the only table"):
        build({"patients": t["patients"]})
    with pytest.raises(DataError, match="end column 'stop' is not in table 'patients'"):
        build(t, end="stop")
    t["events"]["where"] = "clinic"
    with pytest.raises(DataError, match="several text columns"):
        build(t)


def test_dates_are_accepted_and_kept():
    t = nafld_slice()
    for n in ("events", "labs"):
        t[n]["days"] = (
            pd.Timestamp("2020-01-01") + pd.to_timedelta(t[n]["days"], unit="D")
        ).dt.strftime("%Y-%m-%d")
    ds = build(t)
    assert ds.times_are_dates
    assert pd.api.types.is_datetime64_any_dtype(ds.events()["days"])


# -- fuzz: junk time columns raise DataError or build a dataset -------------------------------

_SCALARS = st.one_of(
    st.integers(min_value=-(10**20), max_value=10**20),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=12),
    st.booleans(),
    st.none(),
    st.dates(min_value=dt.date(1, 1, 1)),
    st.datetimes(min_value=dt.datetime(1, 1, 1)),
    st.binary(max_size=4),
    st.timedeltas(),
    st.complex_numbers(max_magnitude=1e6),
    st.sampled_from(["2020-01-01", "1.5", "-3", "nan", "inf", "NaT", "", " 7 ", "3 days"]),
    st.lists(st.integers(), max_size=2),
)


_KINDS = [
    st.integers(min_value=-(10**6), max_value=10**6),
    st.floats(min_value=-1e6, max_value=1e6),
    st.dates(min_value=dt.date(1700, 1, 1), max_value=dt.date(2200, 1, 1)),
    st.datetimes(min_value=dt.datetime(1700, 1, 1), max_value=dt.datetime(2200, 1, 1)),
    st.integers(min_value=-3000, max_value=3000).map(str),
]


@st.composite
def junk_column(draw, n):
    """Plausible columns of one kind (which should build) or junk of any mix of kinds."""
    if draw(st.booleans()):
        values = draw(st.lists(draw(st.sampled_from(_KINDS)), min_size=n, max_size=n))
    else:
        values = draw(st.lists(_SCALARS, min_size=n, max_size=n))
    dtype = draw(st.sampled_from([None, object, "category", "string"]))
    try:
        return pd.Series(values, dtype=dtype)
    except (TypeError, ValueError):
        return pd.Series(values, dtype=object)


@settings(
    max_examples=120,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(data=st.data())
def test_fuzz_junk_times(data):
    t = _fuzz_tables()
    name = data.draw(st.sampled_from(["events", "labs"]))
    col = data.draw(junk_column(len(t[name])))
    t[name] = t[name].assign(days=col.to_numpy(dtype=object) if col.dtype == object else col)
    try:
        ds = build(t)
    except DataError:
        event("DataError")
        return
    event("built")
    for n in ds.event_tables:
        times = ds.tables[n]["days"]
        assert pd.api.types.is_numeric_dtype(times) or pd.api.types.is_datetime64_any_dtype(times)
        assert not pd.api.types.is_bool_dtype(times) and not pd.api.types.is_complex_dtype(times)
    assert len(ds.events()) == sum(len(ds.tables[n]) for n in ds.event_tables)


_TABLES: dict[str, pd.DataFrame] = {}


def _fuzz_tables() -> dict[str, pd.DataFrame]:
    if not _TABLES:
        full = nafld_slice(3)
        _TABLES.update({n: df.head(4).reset_index(drop=True) for n, df in full.items()})
        ids = set(_TABLES["patients"]["id"])
        for n in ("events", "labs"):
            df = full[n][full[n]["id"].isin(ids)].head(4).reset_index(drop=True)
            _TABLES[n] = df
    return {n: df.copy() for n, df in _TABLES.items()}
