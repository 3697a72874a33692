"""timeline-lm on real NAFLD and PBC timelines: validity, conditions, seeds, files, bad input."""

from __future__ import annotations

import json
import warnings

import numpy as np
import pandas as pd
import pytest

from healthsynth.data import Dataset, load_timelines
from healthsynth.errors import (
    ConditionError,
    DataError,
    ModelFolderError,
    NotFittedError,
    ParameterError,
)
from healthsynth.generators import HealthsynthWarning, load_generator
from healthsynth.generators.timeline_lm import TimelineLM
from healthsynth.knowledge import CodeEntry, CodeMap, load_code_map

TINY = {"n_embd": 32, "n_layer": 2, "n_head": 2, "token_budget": 6000}


@pytest.fixture(scope="module")
def nafld() -> Dataset:
    return load_timelines("nafld", max_patients=400, seed=3)


@pytest.fixture(scope="module")
def fitted(nafld) -> TimelineLM:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        # calibration (and its trip through the model folder) is tested in
        # test_timeline_calibration.py; these tests need a trained model, not matched shares
        return TimelineLM(epochs=3, seed=0, calibrate=False, **TINY).fit(nafld, code_map="nafld")


def _events(ds: Dataset) -> pd.DataFrame:
    ev = ds.events()
    return ev.merge(ds.patient_table, on=ds.key, how="left")


def test_sample_has_the_training_shape(fitted, nafld):
    syn = fitted.sample(120, seed=1)
    assert list(syn.tables) == list(nafld.tables)
    for name, df in syn.tables.items():
        real = nafld.tables[name]
        assert list(df.columns) == list(real.columns)
        for c in df.columns:
            assert df[c].dtype == real[c].dtype or df[c].isna().any(), (name, c)
    p = syn.patient_table
    assert len(p) == 120 and p["id"].is_unique and p["id"].tolist() == list(range(1, 121))
    ev = syn.events()
    assert len(ev) > 0
    assert ev["id"].isin(p["id"]).all()
    assert set(ev["item"]) <= set(nafld.events()["item"])
    assert set(p["sex"]) <= {"female", "male"}
    # a valid Dataset: rebuilding it from its tables runs every check
    Dataset.from_tables(syn.tables, key="id", time="days", end="futime", death="status")


def test_every_timeline_is_valid(fitted, nafld):
    syn = fitted.sample(300, seed=2)
    ev = _events(syn)
    # nothing after the end of follow-up (so nothing after death); whole days, as trained
    assert (ev["days"] <= ev["futime"]).all()
    assert np.all(ev["days"] == np.round(ev["days"]))
    # lab values within the mapping's plausible ranges, although the real data break them
    cmap = load_code_map("nafld")
    real_ev = nafld.events()
    broke = 0
    for item in ("chol", "hdl", "sbp", "dbp"):
        e = cmap.get("labs", item)
        vals = ev.loc[ev["item"] == item, "value"]
        assert vals.between(e.low, e.high).all(), item
        broke += int((~real_ev.loc[real_ev["item"] == item, "value"].between(e.low, e.high)).sum())
    assert broke > 0  # the constraint is doing something the data alone would not
    # labs carry a value, diagnoses none
    assert ev.loc[ev["table"] == "labs", "value"].notna().all()
    assert ev.loc[ev["table"] == "events", "value"].isna().all()


def test_same_seed_same_patients(fitted):
    a, b, c = fitted.sample(40, seed=7), fitted.sample(40, seed=7), fitted.sample(40, seed=8)
    for name in a.tables:
        pd.testing.assert_frame_equal(a.tables[name], b.tables[name])
    assert not a.tables["labs"].equals(c.tables["labs"])


def test_blocks_decoded_at_once_give_the_same_patients_in_order(fitted):
    """Five blocks of 12: one thread, or two blocks at a time, draw the same patients."""
    before = fitted.sample_batch_size, fitted.threads
    try:
        fitted.sample_batch_size, fitted.threads = 12, 1
        one = fitted.sample(55, seed=5)
        fitted.threads = 2
        two = fitted.sample(55, seed=5)
    finally:
        fitted.sample_batch_size, fitted.threads = before
    for name in one.tables:
        pd.testing.assert_frame_equal(one.tables[name], two.tables[name])
    patients = one.tables["patients"]
    key = fitted.template_["roles"]["key"]
    assert patients[key].tolist() == list(range(1, 56))
    # each block has random streams of its own: the second block does not repeat the first
    first, second = (patients.drop(columns=key).iloc[s : s + 12] for s in (0, 12))
    assert not first.reset_index(drop=True).equals(second.reset_index(drop=True))


def test_cohort_conditions(fitted):
    syn = fitted.sample(30, conditions={"has": "diabetes", "sex": "female", "age": "60..70"})
    p = syn.patient_table
    assert len(p) == 30
    assert (p["sex"] == "female").all() and p["age"].between(60, 70).all()
    ev = syn.events()
    assert set(ev.loc[ev["item"] == "diabetes", "id"]) == set(p["id"])
    two = fitted.sample(10, conditions={"has": ["events/htn", "nafld"]}, seed=4).events()
    for item in ("htn", "nafld"):
        assert two.loc[two["item"] == item, "id"].nunique() == 10


def test_bad_conditions(fitted):
    with pytest.raises(ConditionError, match="'cancer', which never occurs"):
        fitted.sample(5, conditions={"has": "cancer"})
    with pytest.raises(ConditionError, match="not in the data"):
        fitted.sample(5, conditions={"bloodtype": "A"})
    with pytest.raises(ConditionError, match="never occurs in column 'sex'"):
        fitted.sample(5, conditions={"sex": "x"})
    with pytest.raises(ConditionError, match="patient ID"):
        fitted.sample(5, conditions={"id": 3})
    for n in (0, -1, 2.5, True):
        with pytest.raises(ParameterError, match="positive whole number"):
            fitted.sample(n)


def test_sex_and_age_specific_codes_are_respected(fitted):
    """Map 'afib' to a pregnancy code (female, 12-55 years): men and older women never get it."""
    base = load_code_map("nafld")
    entries = [e for e in base.entries.values() if e.item != "afib"]
    entries.append(
        CodeEntry(
            "events",
            "afib",
            "ICD10CM",
            "O80",
            "Encounter for full-term delivery",
            None,
            None,
            None,
            "test only",
        )
    )
    gen = fitted
    unconstrained = _with_code_map(gen, None).sample(400, seed=5)
    uev = _events(unconstrained)
    assert ((uev["item"] == "afib") & (uev["sex"] == "male")).any()  # the model does make them
    constrained = _with_code_map(gen, CodeMap(entries, name="test")).sample(400, seed=5)
    ev = _events(constrained)
    afib = ev[ev["item"] == "afib"]
    assert (afib["sex"] == "female").all()
    age_at = afib["age"] + afib["days"] / 365.25
    assert age_at.between(12, 55).all()


def _with_code_map(gen: TimelineLM, cmap: CodeMap | None) -> TimelineLM:
    import copy

    other = copy.copy(gen)
    other.code_map_ = cmap
    other.sampler_ = None
    return other


def test_save_load_round_trip(fitted, tmp_path):
    fitted.save(tmp_path / "m")
    files = sorted(p.name for p in (tmp_path / "m").rglob("*") if p.is_file())
    assert "model.safetensors" in files and not any(f.endswith((".pkl", ".bin")) for f in files)
    meta = json.loads((tmp_path / "m" / "generator.json").read_text())
    assert meta["generator"] == "timeline-lm"
    loaded = load_generator(tmp_path / "m")
    assert isinstance(loaded, TimelineLM)
    a, b = fitted.sample(25, seed=3), loaded.sample(25, seed=3)
    for name in a.tables:
        pd.testing.assert_frame_equal(a.tables[name], b.tables[name])
    (tmp_path / "m" / "model" / "model.safetensors").unlink()
    with pytest.raises(ModelFolderError, match="model.safetensors is missing"):
        TimelineLM.load(tmp_path / "m")


@pytest.mark.parametrize("fmt", ["csv", "parquet"])
def test_sample_to_folder_streams_blocks(fitted, tmp_path, fmt):
    out = fitted.sample_to_folder(45, tmp_path / "syn", fmt=fmt, seed=2, block_size=20)
    read = pd.read_csv if fmt == "csv" else pd.read_parquet
    p = read(out / f"patients.{fmt}")
    labs = read(out / f"labs.{fmt}")
    assert p["id"].tolist() == list(range(1, 46))
    assert labs["id"].isin(p["id"]).all() and labs["id"].max() > 20


def test_sample_to_folder_replaces_its_own_output_only(fitted, tmp_path):
    out = fitted.sample_to_folder(10, tmp_path / "syn", seed=1)
    fitted.sample_to_folder(12, out, seed=2)  # an earlier sample is replaced
    assert len(pd.read_csv(out / "patients.csv")) == 12
    other = tmp_path / "mine"
    other.mkdir()
    (other / "notes.txt").write_text("keep me")
    with pytest.raises(ParameterError, match="synthetic patients .* did not write"):
        fitted.sample_to_folder(5, other)
    assert (other / "notes.txt").read_text() == "keep me"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["mine", "syn"]  # no temporary left


def test_sample_to_folder_omop(fitted, tmp_path):
    duckdb = pytest.importorskip("duckdb")
    out = fitted.sample_to_folder(30, tmp_path / "omop", fmt="omop", seed=2)
    con = duckdb.connect()
    n = con.execute(f"select count(*) from '{out}/person.parquet'").fetchone()[0]
    assert n == 30
    codes = con.execute(
        f"select distinct condition_source_value from '{out}/condition_occurrence.parquet'"
    ).fetchall()
    assert codes and all(c[0][0] in "EIK" for c in codes)


def test_wide_visit_table_pbcseq():
    ds = load_timelines("pbcseq", max_patients=120)
    # items the mapping does not know are kept, and the user is told which
    with pytest.warns(HealthsynthWarning, match=r"does not know 5 item\(s\): visits/ascites"):
        # calibration is tested in test_timeline_calibration.py; here the wide visit table
        gen = TimelineLM(epochs=2, calibrate=False, **TINY).fit(ds, code_map="pbcseq")
    syn = gen.sample(40, seed=1)
    v = syn.tables["visits"]
    assert list(v.columns) == list(ds.tables["visits"].columns)
    assert len(v) > 0 and v[["bili", "albumin"]].notna().any().all()
    ev = _events(syn)
    assert (ev["day"] <= ev["futime"]).all()
    assert ev.loc[ev["item"] == "albumin", "value"].between(0.5, 7).all()
    assert {"ascites", "stage"} <= set(ev["item"])


def test_unfitted_and_bad_input(nafld):
    with pytest.raises(NotFittedError, match="call fit"):
        TimelineLM().sample(3)
    with pytest.raises(DataError, match="learns from a healthsynth.data.Dataset"):
        TimelineLM(**TINY).fit(nafld.patient_table)
    few = nafld.subset(nafld.patient_table["id"].head(10))
    with pytest.raises(DataError, match="at least 20"):
        TimelineLM(**TINY).fit(few)
    for bad in ({"epochs": 0}, {"n_head": 5}, {"dropout": 1.5}, {"max_tokens": True}):
        with pytest.raises(ParameterError):
            TimelineLM(**{**TINY, **bad}).fit(nafld)
    dates = {n: df.copy() for n, df in nafld.tables.items()}
    for n in ("events", "labs"):
        dates[n]["days"] = pd.Timestamp("2020-01-01") + pd.to_timedelta(dates[n]["days"], "D")
    ds = Dataset.from_tables(dates, key="id", time="days")
    with pytest.raises(DataError, match="holds dates"):
        TimelineLM(**TINY).fit(ds)


def test_code_map_as_a_setting_still_works_but_is_deprecated(nafld):
    few = nafld.subset(nafld.patient_table["id"].head(60))
    tiny = {**TINY, "n_layer": 1, "epochs": 1, "calibrate": False}
    with pytest.warns(DeprecationWarning, match=r"give the mapping to fit\(data, code_map=...\)"):
        gen = TimelineLM(code_map="nafld", **tiny).fit(few)
    assert gen.code_map_ is not None and gen.code_map_.name == "nafld"
    assert gen.training_record_["code_map"] == "nafld"


def test_batches_are_padded_to_few_shapes_and_the_loss_ignores_the_padding(fitted, nafld):
    import torch
    from torch.nn import functional as F  # noqa: N812

    from healthsynth.generators.timeline_lm._objective import (
        _batch_tensors,
        build_model,
        padded_length,
    )

    assert [padded_length(n, 1000) for n in (16, 17, 21, 33, 100, 539)] == [
        16,
        20,
        24,
        40,
        112,
        640,
    ]
    assert padded_length(539, 530) == 530  # never past the model's positions
    codec, objective, _ = fitted._encode(nafld)
    s, limit = codec.static.n_slots, codec.static.n_slots + codec.max_tokens
    plan = objective.plan(np.random.default_rng(0))
    # every training patient once per epoch; a batch's rows share one padded length
    assert sorted(np.concatenate(plan).tolist()) == list(range(len(objective.train)))
    lengths = set()
    for idx in plan:
        longest = s + max(len(objective.train.tokens[i]) for i in idx)
        length = padded_length(longest, limit)
        lengths.add(length)
        assert len(idx) == 1 or len(idx) * length <= objective.token_budget
    assert len(lengths) <= 4 * int(np.log2(limit))  # four lengths per octave at most
    # the padded batch's loss is the loss of the same patients cut to their longest timeline
    model = build_model(codec, n_embd=16, n_layer=1, n_head=2, dropout=0.0, seed=0).eval()

    def longest(batch):
        return s + max(len(objective.train.tokens[i]) for i in batch)

    padded = [b for b in plan if padded_length(longest(b), limit) > longest(b)]
    idx = max(padded, key=longest)  # the longest batch that has padding
    order = np.tile(np.arange(s), (len(idx), 1))
    inputs, types, labels, states = _batch_tensors(codec, objective.train, idx, order)
    true = longest(idx)
    assert inputs.shape[1] == padded_length(true, limit) > true
    with torch.no_grad():
        loss, n_tok = objective._loss(model, objective.train, idx, order)
        logits = model(inputs[:, :true], types[:, :true])
        keep = labels[:, :true] >= 0
        barred = ~objective.state_mask[states[:, :true][keep]]
        target = labels[:, :true][keep]
        expected = F.cross_entropy(logits[keep].masked_fill(barred, float("-inf")), target)
    assert n_tok == int(keep.sum()) and abs(float(loss) - float(expected)) < 1e-5


@pytest.mark.parametrize("bad", [0, -1.0, float("inf"), "1"])
def test_a_bad_average_half_life_is_refused_by_name(nafld, bad):
    with pytest.raises(ParameterError, match="average_half_life"):
        TimelineLM(average_half_life=bad).fit(nafld)
