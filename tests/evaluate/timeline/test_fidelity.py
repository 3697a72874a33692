from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from healthsynth.data import Dataset
from healthsynth.evaluate.timeline import (
    cooccurrence,
    event_order,
    events_per_patient,
    lab_trajectories,
    prevalence,
    time_between,
)
from healthsynth.evaluate.timeline._prepare import Timelines
from tests.evaluate.timeline._data import (
    nafld_three_way,
    one_patient_for_all,
    reversed_times,
    scaled_labs,
    shuffled_items,
)


def _tiny(events: list[tuple[int, float, str]], *, dates: bool = False) -> Dataset:
    patients = pd.DataFrame(
        {
            "id": [1, 2, 3, 4],
            "age": [50, 60, 70, 40],
            "sex": ["female", "male", "female", "male"],
            "futime": [100, 100, 100, 100],
            "status": [0, 0, 1, 0],
        }
    )
    ev = pd.DataFrame(events, columns=["id", "days", "event"])
    labs = pd.DataFrame({"id": [1, 2], "days": [-10, 5], "test": "x", "value": 1.0})
    if dates:
        for df in (ev, labs):
            df["days"] = pd.Timestamp("2020-01-01") + pd.to_timedelta(df["days"], unit="D")
    return Dataset.from_tables(
        {"patients": patients, "events": ev, "labs": labs},
        key="id",
        time="days",
        end=None if dates else "futime",
        death="status",
        sex="sex",
        age="age",
    )


#: a before b for patient 1, a tie for patient 2, b before a for patient 3; c only for patient 4
_REAL = [(1, -10, "a"), (1, 0, "b"), (2, 5, "a"), (2, 5, "b"), (3, -3, "b"), (3, 2, "a"),
         (4, 1, "c")]  # fmt: skip


def test_prevalence_r2_matches_a_hand_computation():
    real = _tiny(_REAL)
    # a: 1/2 instead of 3/4, b: 3/4, c: 1/4 (and the labs item x: 1/2 on both sides)
    syn = _tiny([(1, 0, "a"), (2, 0, "b"), (3, 0, "a"), (3, 1, "b"), (4, 0, "b"), (4, 1, "c")])
    rec = prevalence.compute(real=real, synthetic=syn)[0]
    items = rec.details["items"]
    assert items["events/a"] == {"real": 0.75, "synthetic": 0.5}
    assert items["labs/x"] == {"real": 0.5, "synthetic": 0.5}
    r = np.array([0.75, 0.75, 0.25, 0.5])
    s = np.array([0.5, 0.75, 0.25, 0.5])
    expected = 1 - ((r - s) ** 2).sum() / ((r - r.mean()) ** 2).sum()
    assert rec.value == pytest.approx(expected)
    assert rec.reference is None


def test_order_share_counts_a_tie_as_one_half():
    tl = Timelines(_tiny(_REAL))
    shares, support = event_order.order_shares(tl, ["events/a", "events/b", "events/c"])
    # pairs (a, b), (a, c), (b, c)
    assert shares[0] == pytest.approx((1 + 0.5 + 0) / 3)
    assert support.tolist() == [3, 0, 0]
    assert np.isnan(shares[1])


def test_gaps_and_counts_on_a_tiny_dataset():
    tl = Timelines(_tiny(_REAL))
    # patient 1: days -10, 0 -> 10; patient 2: day 5 twice -> none; patient 3: -3, 2 -> 5;
    # the labs of patients 1 and 2 fall on days they already have
    assert sorted(time_between.gaps(tl).tolist()) == [5.0, 10.0]
    assert events_per_patient.counts_per_patient(tl, "events").tolist() == [2, 2, 2, 1]


def test_event_order_needs_support():
    real = _tiny(_REAL)
    rec = event_order.compute(real=real, synthetic=real)[0]
    assert rec.status == "not_applicable"
    assert "30 real patients" in rec.message
    ok = event_order.compute(real=real, synthetic=real, min_support=1)[0]
    assert ok.value == 0.0


def test_shuffled_items_lose_cooccurrence_but_keep_prevalence():
    train, hold, fresh = nafld_three_way()
    broken = shuffled_items(fresh)
    co = cooccurrence.compute(real=train, synthetic=broken, holdout=hold)[0]
    assert co.reference > 0.8
    assert co.value < co.reference - 0.2
    prev = prevalence.compute(real=train, synthetic=broken, holdout=hold)[0]
    assert prev.value > 0.85


def test_one_timeline_copied_to_everyone_fails_prevalence_and_counts():
    train, hold, fresh = nafld_three_way()
    broken = one_patient_for_all(fresh)
    prev = prevalence.compute(real=train, synthetic=broken, holdout=hold)[0]
    assert prev.reference > 0.9 and prev.value < 0.5
    counts = {
        r.subgroup: r
        for r in events_per_patient.compute(real=train, synthetic=broken, holdout=hold)
    }
    assert counts["table:events"].value > 0.5 > 5 * counts["table:events"].reference
    assert counts["table:labs"].value == pytest.approx(
        events_per_patient.compute(real=train, synthetic=fresh)[2].value
    )


def test_reversed_or_shuffled_times_break_event_order():
    train, hold, fresh = nafld_three_way()
    rec = event_order.compute(real=train, synthetic=reversed_times(fresh), holdout=hold)[0]
    assert rec.reference < 0.15
    assert rec.value > rec.reference + 0.15
    ev = fresh.tables["events"].copy()
    ev["days"] = np.random.default_rng(0).permutation(ev["days"].to_numpy())
    from tests.evaluate.timeline._data import with_tables

    shuffled = event_order.compute(real=train, synthetic=with_tables(fresh, events=ev))[0]
    assert shuffled.value > rec.reference + 0.1


def test_scaled_labs_break_trajectories():
    train, hold, fresh = nafld_three_way()
    good = lab_trajectories.compute(real=train, synthetic=fresh, holdout=hold)[0]
    bad = lab_trajectories.compute(real=train, synthetic=scaled_labs(fresh), holdout=hold)[0]
    assert good.value < 0.5 and good.reference < 0.5
    assert bad.value > 1.0
    curve = bad.details["curves"]["labs/sbp"]
    assert len(curve["bins"]) == len(curve["real"]) == len(curve["synthetic"])


def test_trajectories_need_days_from_an_index_date():
    real = _tiny(_REAL, dates=True)
    rec = lab_trajectories.compute(real=real, synthetic=real)[0]
    assert rec.status == "not_applicable" and "calendar dates" in rec.message
    # the other fidelity metrics work on dates
    assert time_between.compute(real=real, synthetic=real, max_gaps=10)[0].status in (
        "ok",
        "not_applicable",
    )
    assert prevalence.compute(real=real, synthetic=real)[0].value == 1.0
