from __future__ import annotations

import numpy as np
import pytest

from healthsynth.errors import ParameterError
from healthsynth.evaluate.timeline import tstr
from healthsynth.evaluate.timeline._prepare import Timelines
from tests.evaluate.timeline._data import nafld_three_way, one_patient_for_all


def test_a_given_task_is_scored_against_train_on_real():
    train, hold, fresh = nafld_three_way()
    task = {"item": "diabetes", "horizon_days": 1500}
    rec = tstr.compute(real=train, synthetic=fresh, holdout=hold, task=task)[0]
    assert rec.status == "ok"
    d = rec.details
    assert d["task"]["item"] == "events/diabetes" and d["task"]["chosen"] == "given"
    assert d["gap"] == pytest.approx(rec.reference - rec.value)
    assert rec.interval[0] <= rec.value <= rec.interval[1]
    assert rec.reference > 0.6
    # every eligible holdout patient is counted once: kept + left out = all
    h = d["patients"]["holdout"]
    assert h["kept"] + h["left_out_prior"] + h["left_out_censored"] == h["patients"]


def test_labels_leave_out_prior_and_censored_patients():
    train, _, _ = nafld_three_way()
    tl = Timelines(train)
    task = tstr.Task("events/diabetes", 730.0, True, "given")
    y, keep, counts = tstr.outcome(tl, task)
    first = tl.first_times(["events/diabetes"])[:, 0]
    assert not keep[first <= 0].any()  # prior diabetes is left out
    alive_short = (tl.end < 730) & ~tl.died & ~y
    assert not keep[alive_short].any()  # censored before the horizon
    died_short = (tl.end < 730) & tl.died & ~y & ~(first <= 0)
    assert keep[died_short].all()  # died without the event: a negative
    assert counts["positives"] == int((y & keep).sum())


def test_the_default_task_is_the_most_common_new_item():
    train, _, _ = nafld_three_way()
    task = tstr.default_task(train)
    assert task is not None and task.chosen == "most common"
    tl = Timelines(train)
    shares = {}
    for label in tl.code_labels:
        y, keep, _ = tstr.outcome(tl, tstr.Task(label, 730.0, True, "x"))
        shares[label] = y[keep].mean()
    assert task.label == max(shares, key=shares.get)
    assert shares[task.label] >= tstr.MIN_SHARE


def test_a_useless_synthetic_set_scores_lower():
    train, hold, fresh = nafld_three_way()
    task = {"item": "htn", "horizon_days": 1500}
    good = tstr.compute(real=train, synthetic=fresh, holdout=hold, task=task)[0]
    bad = tstr.compute(real=train, synthetic=one_patient_for_all(fresh), holdout=hold, task=task)[0]
    # one timeline for everyone: the outcome has a single class, so the model cannot rank
    assert bad.value == 0.5 and "one class" in bad.message
    assert good.value > 0.6


def test_not_applicable_and_bad_tasks():
    train, hold, fresh = nafld_three_way()
    rec = tstr.compute(real=train, synthetic=fresh)[0]
    assert rec.status == "not_applicable" and "holdout" in rec.message
    with pytest.raises(ParameterError, match="does not occur in the real data"):
        tstr.check_task({"item": "gout"}, train)
    with pytest.raises(ParameterError, match="horizon_days"):
        tstr.check_task({"item": "htn", "horizon_days": -1}, train)
    with pytest.raises(ParameterError, match="task must be a dict"):
        tstr.check_task("htn", train)  # type: ignore[arg-type]
    assert np.isfinite(tstr.compute(real=train, synthetic=fresh, holdout=hold)[0].value)
