"""The shared LM engine: GPT core vs transformers, folders, old folders, loop seams, threads."""

from __future__ import annotations

import dataclasses
import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from healthsynth.errors import ModelFolderError, ParameterError
from healthsynth.generators import load_generator
from healthsynth.generators._lm import _threads as threads_module
from healthsynth.generators._lm._infer import NumpyGPT
from healthsynth.generators._lm._io import load_model, load_numpy, save_model
from healthsynth.generators._lm._model import build_gpt
from healthsynth.generators._lm._threads import (
    ThreadChoice,
    ThreadControl,
    choose_threads,
    torch_threads,
)
from healthsynth.generators._lm._train import (
    BatchLoss,
    BestValidationLoss,
    LastWeights,
    PeriodicCheck,
    Strategy,
    TrainHook,
    TrainSettings,
    train,
)

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "v1"


def _gpt(seed: int = 1):
    return build_gpt(
        vocab_size=50,
        n_positions=16,
        n_embd=16,
        n_layer=2,
        n_head=2,
        dropout=0.0,
        seed=seed,
        eos_token_id=1,
    ).eval()


def test_exported_core_is_a_stock_gpt2_for_transformers(tmp_path):
    from transformers import AutoModelForCausalLM

    model = _gpt()
    save_model(model, tmp_path)
    config = json.loads((tmp_path / "config.json").read_text())
    assert config["model_type"] == "gpt2" and "auto_map" not in config
    assert config["architectures"] == ["GPT2LMHeadModel"]
    # GPT-2's own activation (tanh GELU): sampled in numpy at a third of the exact erf's cost
    assert config["activation_function"] == "gelu_new"
    hf = AutoModelForCausalLM.from_pretrained(tmp_path, local_files_only=True).eval()
    assert type(hf).__name__ == "GPT2LMHeadModel"
    ids = torch.randint(0, 50, (3, 16), generator=torch.Generator().manual_seed(0))
    types = torch.randint(0, 50, (3, 16), generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        ours = model(ids, types)
        theirs = hf(input_ids=ids, token_type_ids=types).logits
    assert torch.allclose(ours, theirs, atol=1e-5)
    back = load_model(tmp_path)
    with torch.no_grad():
        assert torch.equal(back(ids, types), ours)
    # the numpy copy for sampling reads the same folder without torch
    dec = load_numpy(tmp_path).decoder(3, 16)
    h = dec.step(ids.numpy(), types.numpy())
    assert np.allclose(dec.logits(h, 0, 50), ours[:, -1].numpy(), atol=1e-4)
    # parameter names and shapes are GPT-2's
    hf_shapes = {k: tuple(v.shape) for k, v in hf.state_dict().items()}
    for k, v in model.state_dict().items():
        assert hf_shapes[k] == tuple(v.shape), k


@pytest.mark.parametrize("activation", ["gelu", "gelu_new", "relu"])
def test_numpy_kv_decoder_matches_the_torch_forward_pass(activation):
    from dataclasses import replace

    config = replace(_gpt().config, activation_function=activation)
    model = type(_gpt())(config, seed=4).eval()
    ids = torch.randint(0, 50, (4, 12), generator=torch.Generator().manual_seed(2))
    types = torch.randint(0, 50, (4, 12), generator=torch.Generator().manual_seed(3))
    with torch.no_grad():
        full = model(ids, types).numpy()
    ids, types = ids.numpy(), types.numpy()
    dec = NumpyGPT.from_torch(model).decoder(4, 16)
    h = dec.step(ids[:, :5], types[:, :5])  # a prefix in one pass
    assert np.allclose(dec.logits(h, 0, 50), full[:, 4], atol=1e-4)
    for t in range(5, 9):
        h = dec.step(ids[:, t : t + 1], types[:, t : t + 1])
        assert np.allclose(dec.logits(h, 10, 20), full[:, t, 10:20], atol=1e-4)
    rows = np.array([0, 2])  # a step for some rows of the buffer only
    h = dec.step(ids[rows, 9:10], types[rows, 9:10], rows=rows)
    assert np.allclose(dec.logits(h, 0, 50), full[rows, 9], atol=1e-4)
    dec.select(rows)  # the buffer keeps rows 0 and 2 only
    h = dec.step(ids[rows, 10:11], types[rows, 10:11])
    assert np.allclose(dec.logits(h, 0, 50), full[rows, 10], atol=1e-4)


def test_configs_that_need_other_code_are_refused(tmp_path):
    save_model(_gpt(), tmp_path)
    config = json.loads((tmp_path / "config.json").read_text())
    for change, message in (
        ({"auto_map": {"AutoModelForCausalLM": "x.Y"}}, "has an .auto_map. entry"),
        ({"model_type": "llama"}, "describes a 'llama' model"),
        ({"tie_word_embeddings": False}, "tie_word_embeddings=False"),
        ({"activation_function": "swish"}, "activation 'swish'"),
    ):
        (tmp_path / "config.json").write_text(json.dumps({**config, **change}))
        with pytest.raises(ModelFolderError, match=message):
            load_model(tmp_path)
    (tmp_path / "config.json").write_text(json.dumps({**config, "n_layer": 3}))
    with pytest.raises(ModelFolderError, match="weights do not match model/config.json"):
        load_model(tmp_path)


def test_sampling_a_saved_model_imports_neither_transformers_nor_torch(tmp_path, pima_model):
    pima_model.save(tmp_path / "m")
    expected = pima_model.sample(50, seed=0)
    code = (
        "import sys; from healthsynth.generators import load_generator; "
        f"g = load_generator({str(tmp_path / 'm')!r}); df = g.sample(50, seed=0); "
        f"df.to_csv({str(tmp_path / 'rows.csv')!r}, index=False); "
        f"t = load_generator({str(FIXTURES / 'timeline-lm')!r}).sample(5, seed=0); "
        "print(len(df), len(t.patient_table), 'transformers' in sys.modules, "
        "'torch' in sys.modules, 'sklearn' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["50", "5", "False", "False", "False"]
    # the same rows as in the process that fitted the model
    pd.testing.assert_frame_equal(
        pd.read_csv(tmp_path / "rows.csv"), expected, check_dtype=False, check_exact=False
    )


def test_version_1_folders_load_and_sample_valid_data(tmp_path):
    from transformers import AutoModelForCausalLM

    tab = load_generator(FIXTURES / "tabular-lm")
    assert tab.training_record_["torch_threads"] >= 1  # the old record is read as it was
    rows = tab.sample(300, seed=0)
    tab.schema_.validate(rows)
    old_rows = pd.read_csv(FIXTURES / "tabular-lm-sample-seed0.csv")
    assert list(rows.columns) == list(old_rows.columns)
    # the weights are the ones transformers reads from the same folder
    hf = AutoModelForCausalLM.from_pretrained(FIXTURES / "tabular-lm" / "model").eval()
    ours = load_model(FIXTURES / "tabular-lm" / "model")
    ids = torch.randint(
        0, tab.codec_.vocab_size, (2, 8), generator=torch.Generator().manual_seed(0)
    )
    with torch.no_grad():
        assert torch.allclose(ours(ids, ids), hf(input_ids=ids, token_type_ids=ids).logits)
    tl = load_generator(FIXTURES / "timeline-lm")
    assert tl.code_map_.name == "nafld" and tl.code_map is None
    ds = tl.sample(20, seed=1, conditions={"sex": "female"})
    assert (ds.patient_table["sex"] == "female").all() and len(ds.patient_table) == 20
    # saved again, it is written in the current format and still samples the same
    tl.save(tmp_path / "tl")
    meta = json.loads((tmp_path / "tl" / "generator.json").read_text())
    assert meta["format_version"] == 2 and meta["data_kind"] == "timelines"
    again = load_generator(tmp_path / "tl").sample(20, seed=1, conditions={"sex": "female"})
    for name in ds.tables:
        pd.testing.assert_frame_equal(ds.tables[name], again.tables[name])


def test_folders_of_unreadable_versions_are_refused_with_the_version(tmp_path):
    from healthsynth.generators.tabular_lm import TabularLM

    shutil.copytree(FIXTURES / "tabular-lm", tmp_path / "m")
    meta_path = tmp_path / "m" / "generator.json"
    meta = json.loads(meta_path.read_text())
    meta_path.write_text(json.dumps({**meta, "format_version": 0}))
    with pytest.raises(ModelFolderError, match="written in format version 0 of tabular-lm"):
        TabularLM.load(tmp_path / "m")
    meta_path.write_text(json.dumps({**meta, "format_version": 9}))
    with pytest.raises(ModelFolderError, match="newer healthsynth"):
        TabularLM.load(tmp_path / "m")


class _Regression:
    """A toy objective on real numbers: predict the next token of arithmetic sequences."""

    def __init__(self, n: int = 64) -> None:
        rng = np.random.default_rng(0)
        start = rng.integers(2, 20, size=n)
        self.data = np.stack([start + i for i in range(8)], axis=1) % 50

    def steps_per_epoch(self) -> int:
        return 4

    def plan(self, rng):
        perm = rng.permutation(len(self.data))
        return [perm[i : i + 16] for i in range(0, len(perm), 16)]

    def _loss(self, model, rows):
        x = torch.from_numpy(rows.astype(np.int64))
        logits = model(x[:, :-1])
        return torch.nn.functional.cross_entropy(logits.reshape(-1, 50), x[:, 1:].reshape(-1))

    def loss(self, model, indices, rng):
        return BatchLoss(
            self._loss(model, self.data[indices]), float(len(indices)), 7 * len(indices)
        )

    def validation_loss(self, model):
        return float(self._loss(model, self.data[:16]))


class _HalfBatches(Strategy):
    """A strategy that sees every other batch (what a worker of two would) and counts steps."""

    name = "half"

    def __init__(self) -> None:
        self.steps = 0

    def plan(self, objective, rng):
        return list(objective.plan(rng))[::2]

    def step(self, model, optimizer, loss, s):
        self.steps += 1
        super().step(model, optimizer, loss, s)

    def record(self):
        return {"strategy": self.name, "strategy_steps": self.steps}


def test_training_loop_seams_and_record():
    model = build_gpt(
        vocab_size=50,
        n_positions=8,
        n_embd=16,
        n_layer=1,
        n_head=2,
        dropout=0.0,
        seed=0,
        eos_token_id=1,
    )
    state = torch.random.get_rng_state()
    rec = train(model, _Regression(), TrainSettings(epochs=6, learning_rate=3e-3, patience=20))
    assert torch.equal(torch.random.get_rng_state(), state)  # global random state untouched
    assert rec["stop_reason"] == "epochs" and rec["steps"] == 24 and rec["strategy"] == "local"
    losses = [h["val_nll_per_token"] for h in rec["history"]]
    assert losses[-1] < losses[0] and rec["best_val_nll_per_token"] == min(losses)
    # a different strategy plugs in without touching the loop
    half = _HalfBatches()
    model2 = build_gpt(
        vocab_size=50,
        n_positions=8,
        n_embd=16,
        n_layer=1,
        n_head=2,
        dropout=0.0,
        seed=0,
        eos_token_id=1,
    )
    rec2 = train(model2, _Regression(), TrainSettings(epochs=3, learning_rate=3e-3), strategy=half)
    assert rec2["steps"] == 6 and rec2["strategy_steps"] == 6 and rec2["strategy"] == "half"
    # a failing periodic check stops training and is recorded under its name
    model3 = build_gpt(
        vocab_size=50,
        n_positions=8,
        n_embd=16,
        n_layer=1,
        n_head=2,
        dropout=0.0,
        seed=0,
        eos_token_id=1,
    )
    check = PeriodicCheck("budget", 2, lambda m: {"passed": False})
    rec3 = train(model3, _Regression(), TrainSettings(epochs=6, learning_rate=3e-3), checks=[check])
    assert rec3["stop_reason"] == "budget" and rec3["epochs_run"] == 2
    assert rec3["budget_checks"] == [{"passed": False, "epoch": 2}] and rec3["best_epoch"] == 1


def test_time_budget_fits_the_schedule(monkeypatch):
    model = build_gpt(
        vocab_size=50,
        n_positions=8,
        n_embd=16,
        n_layer=1,
        n_head=2,
        dropout=0.0,
        seed=0,
        eos_token_id=1,
    )
    ticks = iter(np.arange(0.0, 1e4, 0.05))  # a clock that moves 50 ms per reading
    monkeypatch.setattr("time.perf_counter", lambda: float(next(ticks)))
    rec = train(
        model, _Regression(), TrainSettings(epochs=10_000, learning_rate=1e-3, max_time=2.0)
    )
    assert rec["stop_reason"] == "max_time"
    # the schedule was shortened to the steps the first epoch's pace allows, and kept to
    assert 4 < rec["steps_planned"] < 100 and rec["steps"] <= rec["steps_planned"] + 8


def test_thread_choice_follows_the_user_then_the_work(monkeypatch):
    monkeypatch.delenv("HEALTHSYNTH_THREADS", raising=False)
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    assert choose_threads(requested=3) == ThreadChoice(3, "the threads setting", True)
    monkeypatch.setenv("OMP_NUM_THREADS", "2")
    assert choose_threads(requested=None).n == 2
    monkeypatch.setenv("HEALTHSYNTH_THREADS", "1")
    assert choose_threads(requested=None) == ThreadChoice(1, "HEALTHSYNTH_THREADS=1", True)
    monkeypatch.setenv("HEALTHSYNTH_THREADS", "many")
    with pytest.raises(ParameterError, match="HEALTHSYNTH_THREADS must be a positive whole"):
        choose_threads(requested=None)
    monkeypatch.delenv("HEALTHSYNTH_THREADS")
    monkeypatch.delenv("OMP_NUM_THREADS")
    # torch's thread count may have been set by an earlier test: pretend two cores
    monkeypatch.setattr("healthsynth.generators._lm._threads._cores", lambda: 2)
    choice = choose_threads(requested=None, work=1e5)
    assert choice.n == 1 and "small workload" in choice.reason and not choice.fixed


def test_the_load_is_the_least_of_several_readings(monkeypatch):
    """A task runnable in one snapshot only does not cost a sample its second thread."""
    monkeypatch.delenv("HEALTHSYNTH_THREADS", raising=False)  # the test script may set them
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    readings = iter([1, 0, 1])
    monkeypatch.setattr(threads_module, "_runnable_now", lambda: next(readings))
    monkeypatch.setattr("time.sleep", lambda s: None)
    assert threads_module._others_running() == 0.0  # the passer-by was seen once
    readings = iter([1] * threads_module.LOAD_READINGS)
    assert threads_module._others_running() == 1.0  # a busy process is seen every time
    monkeypatch.setattr(threads_module, "_cores", lambda: 2)
    monkeypatch.setattr("os.cpu_count", lambda: 2)
    readings = iter([1] * threads_module.LOAD_READINGS)
    choice = choose_threads(requested=None, work=1e12)
    assert choice == ThreadChoice(1, "1 other process(es) running on 2 cores", False)
    readings = iter([2, 1, 0])
    assert choose_threads(requested=None, work=1e12).n == 2


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")
def test_a_busy_process_is_counted_and_this_process_own_threads_are_not():
    import threading
    import time

    stop = threading.Event()

    def spin() -> None:  # this process's own thread, busy in numpy (the GIL released)
        a = np.ones((300, 300), np.float32)
        while not stop.is_set():
            a @ a

    before = min(threads_module._runnable_now() for _ in range(20))
    own = threading.Thread(target=spin)
    own.start()
    try:
        time.sleep(0.05)
        assert min(threads_module._runnable_now() for _ in range(20)) <= before
    finally:
        stop.set()
        own.join()
    busy = subprocess.Popen([sys.executable, "-c", "while True: pass"])
    try:
        time.sleep(0.3)  # started and spinning
        assert threads_module._others_running() >= 1
    finally:
        busy.kill()
        busy.wait()


def test_threads_are_scoped_drop_when_the_cores_are_taken_and_come_back(monkeypatch):
    assert threads_module._busy_seconds() > 0  # /proc/stat is read on Linux
    before = torch.get_num_threads()
    with torch_threads(1):
        assert torch.get_num_threads() == 1
    assert torch.get_num_threads() == before
    clock = {"wall": 0.0, "cpu": 0.0}
    monkeypatch.setattr("time.perf_counter", lambda: clock["wall"])
    monkeypatch.setattr("time.process_time", lambda: clock["cpu"])
    with torch_threads(2):
        control = ThreadControl(ThreadChoice(2, "idle machine", False), interval=1.0)
        control.on_start(1)
        clock["wall"], clock["cpu"] = 2.0, 3.8  # 95 % of two cores: left alone
        control.on_step(1)
        assert control.threads == 2 and torch.get_num_threads() == 2
        clock["wall"], clock["cpu"] = 4.0, 5.1  # 28 %: another process has the cores
        control.on_step(2)
        assert control.threads == 1 and torch.get_num_threads() == 1
        # back up once the other processes have left the cores alone for a recheck period
        clock["busy"] = 100.0
        monkeypatch.setattr(threads_module, "_busy_seconds", lambda: clock["busy"])
        clock["wall"], clock["cpu"] = 5.0, 6.0
        control.on_step(3)  # starts the measurement
        clock["wall"], clock["cpu"], clock["busy"] = 12.0, 13.0, 108.0
        control.on_step(4)  # 7 s: too soon to judge
        assert control.threads == 1
        clock["wall"], clock["cpu"], clock["busy"] = 16.0, 17.0, 119.0  # others: 0.73 cores
        control.on_step(5)
        assert control.threads == 1 and torch.get_num_threads() == 1
        clock["wall"], clock["cpu"], clock["busy"] = 27.0, 28.0, 130.5  # others: 0.05 cores
        control.on_step(6)
        assert control.threads == 2 and torch.get_num_threads() == 2
        clock["wall"], clock["cpu"] = 29.0, 29.6  # and down again when they come back
        control.on_step(7)
        assert control.threads == 1
        fixed = ThreadControl(ThreadChoice(2, "the threads setting", True), interval=1.0)
        clock["wall"] = 10.0
        fixed.on_step(3)
        assert fixed.threads == 2
    assert torch.get_num_threads() == before
    rec = control.record()
    assert [c["threads"] for c in rec["torch_threads_changes"]] == [1, 2, 1]
    assert rec["torch_threads"] == 2 and "0.05 cores" in rec["torch_threads_changes"][1]["why"]


def test_fit_records_the_thread_choice(pima_model):
    rec = pima_model.training_record_
    assert rec["torch_threads"] >= 1 and rec["torch_threads_reason"]
    assert isinstance(rec["torch_threads_changes"], list)


@pytest.mark.parametrize("workers", [1, 2])
def test_decoder_chunks_threads_and_compaction_keep_every_rows_state(workers):
    """600 rows (chunks of 256, then halves), some finishing, compacted in place."""
    model = _gpt(seed=5)
    rng = np.random.default_rng(0)
    ids = rng.integers(0, 50, (600, 12))
    with torch.no_grad():
        full = model(torch.from_numpy(ids), torch.from_numpy(ids)).numpy()
    dec = NumpyGPT.from_torch(model).decoder(600, 16, workers=workers)
    h = dec.step(ids[:, :4], ids[:, :4])
    assert np.allclose(dec.logits(h, 0, 50), full[:, 3], atol=1e-4)
    live = np.arange(600)  # the original row of each live row
    where = None  # its place in the buffer (None: in order)
    for t, keep_share in zip(range(4, 12), (0.9, 0.5, 1.0, 0.3, 0.8, 0.2, 0.6, 1.0), strict=True):
        h = dec.step(ids[live, t : t + 1], ids[live, t : t + 1], rows=where)
        assert np.allclose(dec.logits(h, 0, 50), full[live, t], atol=1e-4)
        keep = np.sort(rng.choice(len(live), max(1, int(keep_share * len(live))), replace=False))
        live = live[keep]
        where = dec.select((np.arange(dec.rows) if where is None else where)[keep])
        assert dec.rows == len(live)
        if where is not None:  # a place for each live row, each place once
            assert sorted(where.tolist()) == list(range(len(live)))
    assert len(live) < 30  # the last steps ran as one chunk


def test_a_larger_chunk_computes_the_same_states():
    """The slot sampler's chunks of 1,024 rows: the same hidden states as chunks of 256."""
    from healthsynth.generators._lm._infer import SHORT_CHUNK, _chunk_starts

    assert list(_chunk_starts(3000, SHORT_CHUNK)) == [0, 1024, 2048]
    assert list(_chunk_starts(1024, SHORT_CHUNK)) == [0, 512]  # halves below two chunks
    gpt = NumpyGPT.from_torch(_gpt(seed=7))
    ids = np.random.default_rng(2).integers(0, 50, (2100, 6))
    out = []
    for chunk in (256, SHORT_CHUNK):
        dec = gpt.decoder(2100, 8, chunk=chunk)
        out.append(
            [dec.step(ids[:, :2], None)] + [dec.step(ids[:, t : t + 1], None) for t in (2, 3, 4, 5)]
        )
    for a, b in zip(*out, strict=True):
        np.testing.assert_allclose(a, b, rtol=0, atol=1e-5)


def test_decoding_threads_give_the_same_arrays():
    gpt = NumpyGPT.from_torch(_gpt(seed=6))
    ids = np.random.default_rng(1).integers(0, 50, (700, 6))
    out = []
    for workers in (1, 2):
        dec = gpt.decoder(700, 8, workers=workers)
        out.append(
            [dec.step(ids[:, :3], None)] + [dec.step(ids[:, t : t + 1], None) for t in (3, 4, 5)]
        )
    for a, b in zip(*out, strict=True):
        np.testing.assert_array_equal(a, b)


def test_the_allocator_keeps_freed_memory_on_glibc_unless_told_not_to():
    code = "from healthsynth.generators._lm._alloc import keep_freed_memory as k\nprint(k(), k())\n"
    import os

    def run(env: dict[str, str]) -> list[str]:
        done = subprocess.run(
            [sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True
        )
        return done.stdout.split()

    glibc = sys.platform.startswith("linux") and bool(os.confstr("CS_GNU_LIBC_VERSION"))
    assert run(dict(os.environ)) == [str(glibc)] * 2
    assert run({**os.environ, "HEALTHSYNTH_MALLOC_TUNING": "0"}) == ["False", "False"]


def test_rows_do_not_depend_on_the_number_of_sampling_threads(pima_model):
    import copy

    one, two = copy.copy(pima_model), copy.copy(pima_model)
    one.threads, two.threads = 1, 2
    a = one.sample(2500, seed=4)  # three blocks of 1,024 rows
    pd.testing.assert_frame_equal(a, two.sample(2500, seed=4))
    assert len(a.drop_duplicates()) > 2000


class _StepWeights(TrainHook):
    """The model's weights after every optimiser step."""

    def __init__(self, model) -> None:
        self.model, self.seen = model, []

    def on_step(self, step: int) -> None:
        self.seen.append([p.detach().clone() for p in self.model.parameters()])


def _tiny_gpt():
    return build_gpt(
        vocab_size=50,
        n_positions=8,
        n_embd=16,
        n_layer=1,
        n_head=2,
        dropout=0.0,
        seed=0,
        eos_token_id=1,
    )


@pytest.mark.parametrize("rule", [LastWeights, BestValidationLoss])
def test_weight_average_is_what_is_validated_and_kept(rule):
    settings = TrainSettings(epochs=5, learning_rate=3e-2, patience=20)
    plain = _tiny_gpt()
    steps = _StepWeights(plain)
    rec = train(plain, _Regression(), settings, checkpoint=rule(), hooks=[steps])
    averaged = _tiny_gpt()
    half_life = 0.5  # epochs of 4 steps: a step's weight halves after 2 steps
    rec_avg = train(
        averaged,
        _Regression(),
        dataclasses.replace(settings, average_half_life=half_life),
        checkpoint=rule(),
    )
    keep = 0.5 ** (1 / (half_life * 4))
    means = [steps.seen[0]]
    for weights in steps.seen[1:]:
        means.append([keep * m + (1 - keep) * w for m, w in zip(means[-1], weights, strict=True)])
    # the weights kept are the average at the kept epoch's last step, not that step's weights
    kept = means[4 * rec_avg["best_epoch"] - 1]
    for p, m in zip(averaged.parameters(), kept, strict=True):
        assert torch.allclose(p, m, atol=1e-6)
    last = steps.seen[4 * rec_avg["best_epoch"] - 1]
    pairs = zip(averaged.parameters(), last, strict=True)
    assert any(not torch.allclose(p, w, atol=1e-4) for p, w in pairs)
    # validation saw the average too, while training went on from the last step's weights
    assert rec_avg["average_half_life_epochs"] == half_life
    assert rec["average_half_life_epochs"] is None
    assert rec_avg["history"][-1]["val_nll_per_token"] != rec["history"][-1]["val_nll_per_token"]
    assert rec_avg["history"][-1]["train_nll_per_token"] == pytest.approx(
        rec["history"][-1]["train_nll_per_token"], abs=1e-6
    )
