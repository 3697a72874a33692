"""Joint (item, value) tokens on real NAFLD labs: exact round trip, shorter timelines, masks."""

from __future__ import annotations

import dataclasses
import warnings

import numpy as np
import pytest

from healthsynth.data import load_timelines
from healthsynth.generators.timeline_lm import TimelineLM
from healthsynth.generators.timeline_lm._codec import TimelineCodec
from healthsynth.generators.timeline_lm._output import decode_events
from healthsynth.knowledge import CodeMap, load_code_map


@pytest.fixture(scope="module")
def nafld():
    return load_timelines("nafld", max_patients=300, seed=3)


def _encoded(ds, joint):
    c = TimelineCodec.fit(ds, joint_values=joint, max_discrete=256, max_tokens=4096)
    _, toks, states, cut = c.encode(ds, np.random.default_rng(0))
    assert cut == 0
    return c, toks, states


def test_joint_tokens_round_trip_exactly(nafld):
    plain, toks0, _ = _encoded(nafld, False)
    c, toks, states = _encoded(nafld, True)
    joint_items = [c.items[i] for i, j in enumerate(c.joint) if j]
    assert ("labs", "hdl") in joint_items and ("labs", "smoke") in joint_items
    assert not any(plain.joint) and c.vocab_size == plain.vocab_size  # value blocks move
    ev = nafld.events()
    is_joint = np.array([ti in joint_items for ti in zip(ev["table"], ev["item"], strict=True)])
    # one token saved per event of a joint item
    assert sum(map(len, toks0)) - sum(map(len, toks)) == int(is_joint.sum())
    days = [np.zeros(int((s == c.S_ITEM).sum())) for s in states]
    dec = decode_events(c, None, toks, states, days, np.random.default_rng(1))
    real = ev.assign(
        _row=ev[nafld.key].map({k: i for i, k in enumerate(nafld.patient_table["id"])})
    )
    for table, item in joint_items:
        got = dec[(dec["table"] == table) & (dec["item"] == item)].sort_values(["_row", "value"])
        want = real[(real["table"] == table) & (real["item"] == item)].sort_values(
            ["_row", "value"]
        )
        assert np.array_equal(got["_row"].to_numpy(), want["_row"].to_numpy())
        assert np.allclose(got["value"].to_numpy(), want["value"].to_numpy(), equal_nan=True)


def test_joint_model_samples_within_ranges_and_cohorts(nafld):
    entries = [
        dataclasses.replace(e, low=40.0, high=60.0) if e.item == "hdl" else e
        for e in load_code_map("nafld").entries.values()
    ]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        gen = TimelineLM(
            epochs=2,
            n_embd=32,
            n_layer=1,
            n_head=2,
            joint_values=True,
            threads=1,
            seed=0,
            calibrate=False,  # calibration: test_timeline_calibration.py
        ).fit(nafld, code_map=CodeMap(entries, name="narrow-hdl"))
    assert gen.training_record_["params"]["joint_values"] is True
    syn = gen.sample(60, seed=1, conditions={"has": "diabetes"})
    ev = syn.events()
    hdl = ev.loc[ev["item"] == "hdl", "value"]
    assert len(hdl) > 0 and hdl.between(40, 60).all()  # the range masks the joint tokens
    assert ev.loc[ev["item"] == "diabetes", "id"].nunique() == 60
    smoke = ev.loc[ev["item"] == "smoke", "value"]
    assert set(smoke.unique()) <= {0.0, 1.0}
