"""Data-parallel training through the LM engine's Strategy seam, on Ray Train (2 workers)."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import warnings

import numpy as np
import pytest
from typer.testing import CliRunner

from healthsynth.cli import app
from healthsynth.data import infer_schema
from healthsynth.errors import ParameterError
from tests.helpers import real

TINY = {"n_embd": 32, "n_layer": 1, "n_head": 2, "seed": 0, "privacy_stop": False}


class _Recorder:
    """A strategy that counts its steps (the seam must hand it every fit inside the block)."""

    def __new__(cls):
        from healthsynth.generators._lm._train import Strategy

        class Counting(Strategy):
            name = "counting"
            steps = 0

            def step(self, model, optimizer, loss, s):
                type(self).steps += 1
                super().step(model, optimizer, loss, s)

        return Counting()


def test_training_strategy_lends_fit_a_strategy():
    from healthsynth.generators._lm._fit import training_strategy
    from healthsynth.generators.tabular_lm import TabularLM

    pima = real("MASS/Pima.tr")
    schema = infer_schema(pima, target="type")
    strategy = _Recorder()
    with training_strategy(strategy):
        gen = TabularLM(epochs=2, **TINY).fit(pima, schema=schema)
    assert gen.training_record_["strategy"] == "counting"
    assert type(strategy).steps == gen.training_record_["steps"] > 0
    again = TabularLM(epochs=1, **TINY).fit(pima, schema=schema)  # outside: the default
    assert again.training_record_["strategy"] == "local"


def test_each_worker_takes_its_share_of_every_batch():
    from healthsynth.scale._ddp import DataParallel

    class Plan:
        def plan(self, rng):
            return [np.arange(10), np.arange(10, 12), np.arange(12, 13)]

    shares = []
    for rank in range(3):
        s = DataParallel.__new__(DataParallel)  # no process group needed to plan
        s.rank, s.world, s.rng = rank, 3, np.random.default_rng(0)
        shares.append([b.tolist() for b in s.plan(Plan(), np.random.default_rng(1))])
    # the same number of steps on every worker (DDP needs it); every row of a batch once,
    # except in a batch smaller than the number of workers, which each worker takes whole
    assert [len(x) for x in shares] == [3, 3, 3]
    assert sorted(sum((x[0] for x in shares), [])) == list(range(10))
    assert [x[0] for x in shares] == [[0, 3, 6, 9], [1, 4, 7], [2, 5, 8]]
    assert all(x[1] == [10, 11] and x[2] == [12] for x in shares)


def test_ddp_reaches_the_single_process_validation_loss(ray_cluster):
    from healthsynth.generators.tabular_lm import TabularLM
    from healthsynth.scale.train import compare

    pima = real("MASS/Pima.tr")
    res = compare(
        TabularLM(epochs=6, **TINY), pima, workers=2, schema=infer_schema(pima, target="type")
    )
    assert res["ray"]["strategy"] == "ray-ddp" and res["ray"]["workers"] == 2
    assert res["ray"]["steps"] == res["local"]["steps"]  # the same steps, split two ways
    assert abs(res["relative_gap"]) < 0.03


def test_time_budget_stops_every_worker_and_the_model_samples(ray_cluster, tmp_path):
    from healthsynth.data import load_timelines
    from healthsynth.generators.timeline_lm import TimelineLM
    from healthsynth.scale.train import fit

    ds = load_timelines("nafld", max_patients=200, seed=3)
    gen = TimelineLM(
        epochs=200,
        max_time=4,
        code_map="nafld",
        seed=0,
        n_embd=32,
        n_layer=1,
        n_head=2,
        token_budget=4000,
        calibrate=False,  # calibration after a data-parallel fit: test_timeline_calibration.py
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        fitted = fit(gen, ds, workers=2)
    rec = fitted.training_record_
    assert rec["stop_reason"] == "max_time" and rec["epochs_run"] < 200
    assert rec["engine"] == "ray" and rec["strategy"] == "ray-ddp"
    syn = fitted.sample(20, seed=1)
    assert len(syn.patient_table) == 20
    folder = fitted.save(tmp_path / "model")
    assert json.loads((folder / "training.json").read_text())["workers"] == 2


def test_fit_on_ray_from_the_command_line(ray_cluster, tmp_path):
    runner = CliRunner()
    data = tmp_path / "pima.csv"
    real("MASS/Pima.tr").to_csv(data, index=False)
    r = runner.invoke(
        app,
        [
            "fit",
            str(data),
            "--out",
            str(tmp_path / "m"),
            "--epochs",
            "2",
            "--engine",
            "ray",
            "--workers",
            "2",
            "--target",
            "type",
        ],
    )
    assert r.exit_code == 0, r.output
    training = json.loads((tmp_path / "m" / "training.json").read_text())
    assert training["strategy"] == "ray-ddp" and training["workers"] == 2
    r = runner.invoke(
        app,
        [
            "fit",
            str(data),
            "--out",
            str(tmp_path / "m2"),
            "--generator",
            "marginals",
            "--engine",
            "ray",
        ],
    )
    assert r.exit_code == 2 and "trains the language-model generators" in r.output
    assert not (tmp_path / "m2").exists()


def test_only_lm_generators_train_on_ray():
    from healthsynth.generators import registry
    from healthsynth.scale.train import fit

    with pytest.raises(ParameterError, match="fit 'marginals' with --engine local"):
        fit(registry.get("marginals")(), real("MASS/Pima.tr"), workers=2)


def _fit_args(tmp_path, *extra):
    data = tmp_path / "pima.csv"
    if not data.exists():
        real("MASS/Pima.tr").to_csv(data, index=False)
    return ["fit", str(data), "--out", str(tmp_path / "m"), "--epochs", "1", *map(str, extra)]


def _user_error(result, fragment):
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output and fragment in " ".join(result.output.split())


def test_fit_bad_engine_input_is_one_line_and_writes_nothing(tmp_path, monkeypatch):
    runner = CliRunner()
    r = runner.invoke(app, _fit_args(tmp_path, "--engine", "ray", "--workers", 0))
    _user_error(r, "--workers must be a positive whole number of Ray workers")
    r = runner.invoke(app, _fit_args(tmp_path, "--workers", 2))
    _user_error(r, "--workers applies to --engine ray")
    r = runner.invoke(app, _fit_args(tmp_path, "--engine", "spark"))
    _user_error(r, "--engine must be one of local, ray")
    r = runner.invoke(app, _fit_args(tmp_path, "--gpus-per-worker", 1))
    _user_error(r, "--gpus-per-worker applies to --engine ray")
    r = runner.invoke(app, _fit_args(tmp_path, "--engine", "ray", "--gpus-per-worker", 2))
    _user_error(r, "--gpus-per-worker must be a number from 0 to 1 (a share of one GPU); got 2.0")
    monkeypatch.setitem(sys.modules, "ray", None)  # as if Ray were not installed
    r = runner.invoke(app, _fit_args(tmp_path, "--engine", "ray", "--workers", 2))
    _user_error(r, "pip install 'healthsynth[ray]'")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["pima.csv"]


def test_fit_on_an_unreachable_cluster_is_one_line(tmp_path):
    from tests.scale.conftest import ray_or_skip

    ray_or_skip()
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    args = ("--engine", "ray", "--workers", 1, "--ray-address", f"127.0.0.1:{port}")
    r = CliRunner().invoke(app, _fit_args(tmp_path, *args))
    _user_error(r, f"cannot reach the Ray cluster at 127.0.0.1:{port}")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["pima.csv"]


def test_fit_with_the_local_engine_never_imports_ray(tmp_path):
    args = _fit_args(tmp_path, "--generator", "tabular-lm")  # the LM engine's loop, locally
    code = (
        "import sys; from typer.testing import CliRunner; from healthsynth.cli import app; "
        f"r = CliRunner().invoke(app, {args!r}); assert r.exit_code == 0, r.output; "
        "print('ray' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip().splitlines()[-1] == "False"


def _ray_train_workers() -> dict[int, str]:
    """Ray Train worker processes of this machine and their names (Linux /proc).

    Ray names a worker process after its actor and the method it runs: ``get_metadata`` and
    ``init_train_context`` while the group is set up, then ``run_train_fn``, which starts the
    training function in a thread and returns; while that thread trains, the name is the bare
    ``ray::RayTrainWorker`` (it is bare between the set-up methods too).
    """
    from pathlib import Path

    found = {}
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            name = (proc / "cmdline").read_bytes().split(b"\x00")[0].decode(errors="replace")
        except OSError:
            continue
        if name.startswith("ray::RayTrainWorker"):
            found[int(proc.name)] = name
    return found


def test_a_training_worker_killed_mid_fit_fails_with_one_sentence_and_writes_nothing(
    ray_cluster, tmp_path
):
    import os
    import signal
    import threading
    import time

    from healthsynth.errors import EngineError
    from healthsynth.generators.tabular_lm import TabularLM
    from healthsynth.scale.train import fit

    killed: list[int] = []
    stop = threading.Event()

    def kill_one_when_training() -> None:
        launched: set[int] = set()  # seen starting the training function
        set_up: set[int] = set()  # seen setting up its train context
        bare: dict[int, float] = {}  # bare name since, after the set-up
        training: dict[int, float] = {}  # training since
        while not stop.is_set() and not killed:
            now = time.monotonic()
            for pid, name in _ray_train_workers().items():
                if name.endswith(".run_train_fn"):
                    launched.add(pid)
                elif name.endswith(".init_train_context"):
                    set_up.add(pid)
                if name != "ray::RayTrainWorker":
                    bare.pop(pid, None)
                    continue
                if pid in set_up:
                    bare.setdefault(pid, now)
                # run_train_fn lasts a few ms and may fall between two looks: a second of
                # bare name after the set-up means the same
                if pid in launched or (pid in bare and now - bare[pid] > 1.0):
                    training.setdefault(pid, now)
            # (a worker lost while the group is set up is retried by Ray Train on its own)
            ready = [pid for pid, t in training.items() if now - t > 2.0]
            if len(training) >= 2 and ready:
                os.kill(ready[0], signal.SIGKILL)
                killed.append(ready[0])
            time.sleep(0.02)

    pima = real("MASS/Pima.tr")
    # a fixed schedule capped by time, so the fit is still running when the worker is killed
    gen = TabularLM(epochs=2000, max_time=45, early_stopping=False, **TINY)
    watcher = threading.Thread(target=kill_one_when_training, daemon=True)
    watcher.start()
    try:
        with pytest.raises(EngineError) as e:
            fit(gen, pima, workers=2, schema=infer_schema(pima, target="type"))
    finally:
        stop.set()
        watcher.join()
    assert killed, "no training Ray Train worker was seen to kill"
    message = str(e.value)
    assert "\n" not in message and "worker died" in message, message
    assert "nothing was saved" in message, message


def test_dp_sgd_trains_data_parallel_under_the_single_process_accounting(ray_cluster):
    try:
        import opacus  # noqa: F401
    except ImportError as e:
        if os.environ.get("HEALTHSYNTH_REQUIRE_EXTRAS") == "1":
            pytest.fail(f"HEALTHSYNTH_REQUIRE_EXTRAS=1 but opacus (extra 'dp') is missing: {e}")
        pytest.skip("opacus (extra 'dp') is not installed")
    from healthsynth.generators.tabular_lm import TabularLM
    from healthsynth.scale.train import fit

    pima = real("MASS/Pima.tr")
    schema = infer_schema(pima, target="type")
    settings = {"epochs": 6, "batch_size": 50, "dp_epsilon": 4.0, **TINY}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        two = fit(TabularLM(**settings), pima, workers=2, schema=schema)
        one = TabularLM(**settings).fit(pima, schema=schema)
    rec, dp = two.training_record_, two.training_record_["dp"]
    assert rec["strategy"] == "dp-sgd+ray-ddp" and rec["workers"] == 2 and dp["workers"] == 2
    # the same calibration and the same number of steps as one process, so the same ε
    local = one.training_record_["dp"]
    for key in ("noise_multiplier", "sample_rate", "steps_planned", "delta"):
        assert dp[key] == local[key], key
    assert dp["steps"] == dp["steps_planned"] == rec["steps"] == 6 * round(len(pima) / 50)
    assert 0.97 * 4.0 <= dp["epsilon"] <= 4.0
    # the loss follows one process's (measured: within 0.01; the noise differs between runs);
    # that the update is the single-process one is tested exactly in tests/generators/test_dp.py
    last = rec["history"][-1]["train_nll_per_token"]
    alone = one.training_record_["history"][-1]["train_nll_per_token"]
    assert last == pytest.approx(alone, abs=0.03)
    out = two.sample(200, seed=1)
    two.schema_.validate(out)
