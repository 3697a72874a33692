"""timeline-lm's time context: the phase in each position's token type, in training and sampling.

Known answers for the phases, the encoding of real NAFLD timelines, the agreement between the
phases a fitted model is trained on and the ones the sampler feeds it, and codecs saved before
the time context (one phase: the old vocabulary).
"""

from __future__ import annotations

import warnings

import numpy as np
import pytest

from healthsynth.data import Dataset, load_timelines
from healthsynth.generators.timeline_lm import TimelineLM, _policy
from healthsynth.generators.timeline_lm._codec import TimelineCodec

TINY = {"n_embd": 32, "n_layer": 2, "n_head": 2, "token_budget": 6000}


@pytest.fixture(scope="module")
def nafld() -> Dataset:
    return load_timelines("nafld", max_patients=300, seed=5)


@pytest.fixture(scope="module")
def codec(nafld) -> TimelineCodec:
    return TimelineCodec.fit(nafld)


@pytest.mark.parametrize(
    ("t", "end", "started", "phase"),
    [
        (0.0, 1000.0, False, 0),  # nothing has happened yet
        (-500.0, 1000.0, True, 4),  # before day 0, 1,500 days left: the longest span
        (-10.0, 50.0, True, 1),  # before day 0, 60 days left
        (10.0, 50.0, True, 6),  # after day 0, 40 days left
        (10.0, 300.0, True, 7),  # after day 0, 290 days left
        (100.0, 1000.0, True, 8),  # after day 0, 900 days left
        (100.0, 5000.0, True, 9),  # after day 0, 4,900 days left
        (100.0, np.inf, True, 10),  # after day 0, end of follow-up unknown
        (-100.0, np.nan, True, 5),  # before day 0, end of follow-up unknown
        (20.0, 10.0, True, 6),  # an event after the end of follow-up: the shortest span
    ],
)
def test_phases_known_answers(codec, t, end, started, phase):
    got = codec.phase(np.array([t]), np.array([end]), np.array([started]))
    assert got.tolist() == [phase]


def test_every_state_has_a_marker_per_phase(codec):
    assert codec.n_phases == 11
    s = codec.static.n_slots
    markers = codec.state_marker[s:]
    # the last phase of every timeline state is still a marker token, below END
    assert (markers + codec.n_phases - 1 < codec.END).all()
    assert set((markers[:, None] + np.arange(codec.n_phases)).ravel()) <= set(codec.markers)


def test_encoded_nafld_timelines_carry_their_phases(nafld, codec):
    _, toks, states, phases, cut = codec.encode_timelines(nafld, np.random.default_rng(0))
    assert cut == 0 or cut < len(toks)
    end = nafld.patient_table["futime"].to_numpy(float)
    for tt, st, ph in zip(toks, states, phases, strict=True):
        assert len(ph) == len(tt) == len(st)
        if len(tt) > 1:
            # the first event's start day (bin and sub-bin): nothing is known yet
            assert st[0] == codec.S_START_C and st[1] == codec.S_START_F
            assert (ph[:2] == 0).all()
            assert (ph[2:] > 0).all()  # from the first item on, the timeline has started
            # the end of follow-up is known for every NAFLD patient
            assert (ph[2:] != 5).all() and (ph[2:] != 10).all()
        else:
            assert ph.tolist() == [0]  # no events: END right away
        if tt[-1] == codec.END and len(tt) > 1:
            assert ph[-1] == ph[-2]  # END knows the last event's day
    # both sides of day 0 occur in NAFLD (history before the index date, follow-up after)
    allp = np.concatenate(phases)
    assert (allp[(allp >= 1) & (allp <= 5)]).size and (allp[allp >= 6]).size
    assert np.isfinite(end).all()


def test_sampling_feeds_the_phases_training_uses(nafld):
    """Re-encoding sampled patients gives the token types the sampler fed the model."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        gen = TimelineLM(epochs=2, calibrate=False, seed=0, **TINY).fit(nafld)
    fed: list[tuple[np.ndarray, np.ndarray]] = []
    advance = _policy.TimelinePolicy.advance

    def spy(self, pick):
        rows = self.alive.copy()
        out = advance(self, pick)
        if out is not None:
            keep = np.ones(len(rows), bool) if out[2] is None else out[2]
            # the phase fed: the type minus the next state's phase-0 marker
            phase = out[1][:, 0] - self.m.marker[np.maximum(self.state, 0)]
            fed.append((rows[keep], phase[keep]))
        return out

    _policy.TimelinePolicy.advance = spy
    try:
        syn = gen.sample(60, seed=2)
    finally:
        _policy.TimelinePolicy.advance = advance
    codec = gen.codec_
    phases_fed: dict[int, list[int]] = {}
    for rows, phase in fed:
        for r, p in zip(rows.tolist(), phase.tolist(), strict=True):
            phases_fed.setdefault(r, []).append(p)
    # events of one day may come back in another order, which moves no phase: within a day
    # every position has that day's phase but the day's first time tokens
    _, _, _, phases, _ = codec.encode_timelines(syn, np.random.default_rng(0))
    compared = 0
    for r, ph in enumerate(phases):
        # the sampler feeds every position's type after the prefix's (the first), up to the
        # last token before END
        got = phases_fed.get(r, [])
        n = min(len(got), len(ph) - 1)
        assert got[:n] == ph[1 : 1 + n].tolist(), r
        compared += n
    assert compared > 200
    assert len({p for v in phases_fed.values() for p in v}) >= 4


def test_a_codec_saved_before_the_time_context_keeps_its_vocabulary(nafld, codec):
    state = dict(codec.to_dict())
    del state["time_context"]
    old = TimelineCodec(state)
    assert old.n_phases == 1
    assert old.END == codec.END - 7 * (codec.n_phases - 1)
    assert old.vocab_size == codec.vocab_size - 7 * (codec.n_phases - 1)
    _, _, _, phases, _ = old.encode_timelines(nafld, np.random.default_rng(0))
    assert all((p == 0).all() for p in phases)
    off = TimelineCodec.fit(nafld, time_context=False)
    assert off.vocab_size == old.vocab_size and off.n_phases == 1


def test_time_context_is_a_checked_setting(nafld):
    from healthsynth.errors import ParameterError

    with pytest.raises(ParameterError, match="time_context"):
        TimelineLM(time_context="yes").fit(nafld)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        gen = TimelineLM(epochs=1, time_context=False, calibrate=False, seed=0, **TINY)
        gen.fit(nafld)
    assert gen.codec_.n_phases == 1
