"""Death recorded as an event (mgus2, one row per event): checks, order, exports, metrics."""

from __future__ import annotations

import json
from dataclasses import replace

import numpy as np
import pandas as pd
import pytest

from healthsynth.data import Dataset, export_dataset_as, load_timelines
from healthsynth.errors import DataError

INDEX = pd.Timestamp("2020-01-01")


@pytest.fixture(scope="module")
def mgus() -> Dataset:
    return load_timelines("mgus2")


def _tables(ds: Dataset) -> dict[str, pd.DataFrame]:
    return {n: df.copy() for n, df in ds.tables.items()}


def _build(tables, **kw) -> Dataset:
    return Dataset.from_tables(tables, key="id", time="day", **kw)


def test_a_code_absent_from_the_data_is_refused(mgus):
    with pytest.raises(DataError, match=r"the death event 'died' never occurs in the event tables"):
        _build(_tables(mgus), death_event="died")
    with pytest.raises(DataError, match="never occurs"):
        _build(_tables(mgus), death_event="patients/death")  # not a code table


def test_events_after_death_are_reported(mgus):
    t = _tables(mgus)
    ev = t["events"]
    who = int(ev.loc[ev["event"] == "death", "id"].iloc[0])
    day = int(ev.loc[(ev["id"] == who) & (ev["event"] == "death"), "day"].iloc[0])
    t["events"] = pd.concat(
        [ev, pd.DataFrame({"id": [who], "day": [day + 10], "event": ["progression"]})],
        ignore_index=True,
    )
    with pytest.raises(DataError) as err:
        _build(t, death_event="death")
    msg = str(err.value)
    assert f"patient ID {who}" in msg and f"day {day + 10}" in msg
    assert "after its death event 'death'" in msg and "1 patients have events after death" in msg
    # the same day is not "after": the death is put last on its day
    t["events"].loc[t["events"].index[-1], "day"] = day
    ds = _build(t, death_event="death")
    assert ds.events().groupby("id").tail(1).query("id == @who")["item"].item() == "death"


def test_a_patient_who_dies_twice_is_refused(mgus):
    t = _tables(mgus)
    ev = t["events"]
    two = ev[ev["event"] == "death"].head(1)
    t["events"] = pd.concat([ev, two], ignore_index=True)
    with pytest.raises(DataError, match=r"has the death event 'death' 2 times"):
        _build(t, death_event="death")


def test_meds_death_is_the_death_event_by_default(mgus):
    t = _tables(mgus)
    t["events"]["event"] = t["events"]["event"].replace({"death": "MEDS_DEATH"})
    ds = _build(t)
    assert ds.death_event == "MEDS_DEATH" and ds.died().sum() == 963
    # a code holding a slash that is no table prefix is a code of its own
    t["events"]["event"] = t["events"]["event"].replace({"MEDS_DEATH": "SNOMED/419620001"})
    ds = _build(t, death_event="SNOMED/419620001")
    assert ds.died().sum() == 963
    assert _build(_tables(mgus), death_event="events/death").died().sum() == 963
    assert _build(_tables(mgus)).death_event is None  # nothing is guessed from 'death'


def test_died_and_death_days_come_from_the_event(mgus):
    ev = mgus.tables["events"]
    deaths = ev[ev["event"] == "death"].set_index("id")["day"]
    days = mgus.death_days()
    p = mgus.patient_table
    assert np.array_equal(np.isfinite(days.astype(float)), p["id"].isin(deaths.index).to_numpy())
    assert (pd.Series(days, index=p["id"]).dropna() == deaths.reindex(p["id"]).dropna()).all()
    assert mgus.roles()["death_event"] == "death"


def test_omop_puts_death_in_the_death_table(mgus, tmp_path):
    small = mgus.subset(mgus.patient_table["id"][:200])
    folder = export_dataset_as(small, tmp_path / "omop", fmt="omop")
    death = pd.read_parquet(folder / "death.parquet")
    ev = small.tables["events"]
    real = ev[ev["event"] == "death"].set_index("id")["day"]
    assert len(death) == len(real) > 100
    got = death.set_index("person_id")["death_date"]
    want = (INDEX + pd.to_timedelta(real, unit="D")).dt.date
    assert (pd.to_datetime(got).dt.date == want.reindex(got.index)).all()
    cond = pd.read_parquet(folder / "condition_occurrence.parquet")
    assert "death" not in set(cond["condition_source_value"])  # not a condition as well
    assert len(cond) == int((ev["event"] != "death").sum())
    obs = pd.read_parquet(folder / "observation_period.parquet").set_index("person_id")
    end = pd.to_datetime(obs["observation_period_end_date"]).dt.date
    assert (end.reindex(got.index) >= pd.to_datetime(got).dt.date).all()


def test_fhir_and_meds_mark_the_death(mgus, tmp_path):
    small = mgus.subset(mgus.patient_table["id"][:60])
    died = dict(zip(small.patient_table["id"], small.died(), strict=True))
    fhir = export_dataset_as(small, tmp_path / "fhir", fmt="fhir")
    ev = small.tables["events"]
    for pid, dead in died.items():
        bundle = json.loads((fhir / f"Patient-{pid}.json").read_text())
        patient = bundle["entry"][0]["resource"]
        assert ("deceasedDateTime" in patient) == dead
        if dead:
            day = int(ev.loc[(ev["id"] == pid) & (ev["event"] == "death"), "day"].item())
            assert patient["deceasedDateTime"][:10] == str((INDEX + pd.Timedelta(days=day)).date())
        texts = [e["resource"].get("code", {}).get("text") for e in bundle["entry"][1:]]
        assert "death" not in texts
    meds = export_dataset_as(small, tmp_path / "meds", fmt="meds")
    rows = pd.read_parquet(meds / "data" / "train" / "0.parquet")
    assert (rows["code"] == "MEDS_DEATH").sum() == sum(died.values())
    assert not rows["code"].astype(str).str.endswith("/death").any()


def test_violations_count_events_after_a_death_event(mgus):
    from healthsynth.evaluate.timeline._prepare import Timelines
    from healthsynth.evaluate.timeline.violations import check_events

    ev = mgus.tables["events"]
    who = ev.loc[ev["event"] == "death", "id"].iloc[:5]
    late = ev[ev["id"].isin(who) & (ev["event"] == "death")].assign(event="progression")
    late["day"] += 30
    broken = replace(mgus, tables={**mgus.tables, "events": pd.concat([ev, late])})
    bad, skip = check_events(Timelines(broken), known=set(), code_map=None)
    assert "after_death" not in skip
    assert int(bad["after_death"].sum()) == 5
    bad, _ = check_events(Timelines(mgus), known=set(), code_map=None)
    assert int(bad["after_death"].sum()) == 0


def test_violations_check_the_real_structure(mgus):
    from healthsynth.evaluate.timeline._prepare import Timelines
    from healthsynth.evaluate.timeline.violations import compute, structure_of

    assert structure_of(Timelines(mgus)) == (
        {"events/mgus", "events/progression", "events/death"},
        {"events/death"},
    )
    ev = mgus.tables["events"]
    # seven repeated progressions, each a day after the first (all before these patients' death)
    prog = ev[ev["event"] == "progression"].head(7).assign(day=lambda d: d["day"] + 1)
    # two events on the day after a death (no death event check: built without from_tables)
    late = ev[ev["event"] == "death"].tail(2).assign(event="mgus", day=lambda d: d["day"] + 1)
    broken = replace(mgus, tables={**mgus.tables, "events": pd.concat([ev, prog, late])})
    n_after = 2
    recs = {r.subgroup: r for r in compute(real=mgus, synthetic=broken)}
    assert recs["kind:repeated_once_only"].details["count"] == 7 + 2  # mgus is once-only too
    assert recs["kind:after_terminal"].details["count"] == n_after
    assert recs[None].details["terminal_items"] == ["events/death"]
    clean = {r.subgroup: r for r in compute(real=mgus, synthetic=mgus)}
    assert clean["kind:repeated_once_only"].value == clean["kind:after_terminal"].value == 0
