"""``run_benchmark(..., engine="ray")``: cells as Ray tasks, the same resumable cell folders."""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

import pandas as pd
import pytest

from healthsynth.benchmark import _ray, _runner, load_config, run_benchmark
from healthsynth.data._outputs import pid_alive
from healthsynth.errors import ParameterError

FAST = "[column_distance, tstr, dcr, coverage]"


def _config(tmp_path, body):
    p = tmp_path / "bench.yaml"
    p.write_text(textwrap.dedent(body), encoding="utf-8")
    return load_config(p)


def _cells(out):
    return sorted(out.glob("cells/*/*/*/cell.json"))


def test_cells_run_as_ray_tasks_into_the_same_folders_and_resume(ray_cluster, tmp_path):
    cfg = _config(
        tmp_path,
        f"""\
        datasets: [{{name: pima, source: MASS/Pima.tr, target: type}}]
        generators:
          - marginals
          - {{name: broken-lm, generator: tabular-lm, params: {{base_model: /no/such/model}}}}
        train_sizes: [60, all]
        seeds: [0]
        metrics: {FAST}
        """,
    )
    events = []
    run = run_benchmark(
        cfg, tmp_path / "ray", workers=2, engine="ray", on_event=lambda k, c, i: events.append(k)
    )
    assert run.cells == 4 and run.ran == 4 and run.status == {"ok": 2, "failed": 2}
    assert events.count("start") == 4 and events.count("end") == 4
    ok = tmp_path / "ray" / "cells" / "pima" / "marginals" / "n60-s0"
    assert {p.name for p in ok.iterdir()} >= {"cell.json", "records.json", "synthetic.csv"}
    bad = json.loads((tmp_path / "ray/cells/pima/broken-lm/n60-s0/cell.json").read_text())
    assert bad["status"] == "failed" and "/no/such/model" in bad["error"]
    # the same cells run locally score the same
    local = run_benchmark(cfg, tmp_path / "local", workers=1)
    assert local.status == run.status
    a = pd.read_csv(tmp_path / "ray" / "results.csv")
    b = pd.read_csv(tmp_path / "local" / "results.csv")
    key = ["dataset", "generator", "train_size", "seed", "metric", "subgroup"]
    timing = a["metric"].str.endswith(("_seconds", "_mb")) | a["metric"].eq("cell_status")
    va = a[(a["status"] == "ok") & ~timing].set_index(key)["value"].sort_index()
    timing = b["metric"].str.endswith(("_seconds", "_mb")) | b["metric"].eq("cell_status")
    vb = b[(b["status"] == "ok") & ~timing].set_index(key)["value"].sort_index()
    assert len(va) == 18  # 9 scores of each marginals cell
    pd.testing.assert_series_equal(va, vb)
    # a rerun keeps every finished cell
    before = {p: p.stat().st_mtime_ns for p in _cells(tmp_path / "ray")}
    again = run_benchmark(cfg, tmp_path / "ray", workers=2, engine="ray")
    assert again.ran == 0 and again.skipped == 4
    assert {p: p.stat().st_mtime_ns for p in _cells(tmp_path / "ray")} == before


def test_a_cell_past_its_budget_is_cancelled(ray_cluster, tmp_path, monkeypatch):
    monkeypatch.setattr(_runner, "_GRACE_S", 0.5)
    cfg = _config(
        tmp_path,
        """\
        datasets: [{name: pima, source: MASS/Pima.tr, target: type}]
        generators: [{name: tabular-lm, params: {epochs: 500, privacy_stop: false, max_time: 60}}]
        train_sizes: [all]
        seeds: [0]
        time_budget_per_cell_s: 2
        """,
    )
    # a folder left by a worker killed in an earlier run (its process is gone)
    ended = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                           capture_output=True, text=True, check=True)  # fmt: skip
    stale = Path(tempfile.gettempdir()) / f"{_ray.PREFIX}{ended.stdout.strip()}-x"
    (stale / "cells").mkdir(parents=True)
    started = time.perf_counter()
    run = run_benchmark(cfg, tmp_path / "out", workers=1, engine="ray")
    assert time.perf_counter() - started < 40
    assert run.status == {"timeout": 1}
    info = json.loads(_cells(tmp_path / "out")[0].read_text())
    assert info["status"] == "timeout" and "time budget of 2 s" in info["error"]
    # the killed cell's folder and the stale one are removed; a live process's is kept
    assert not stale.exists()
    left = [p for p in Path(tempfile.gettempdir()).glob(f"{_ray.PREFIX}*-*")
            if not pid_alive(int(p.name[len(_ray.PREFIX):].split("-")[0]))]  # fmt: skip
    assert left == []


def test_engine_settings_are_checked(tmp_path):
    cfg = _config(
        tmp_path,
        """\
        datasets: [{name: pima, source: MASS/Pima.tr, target: type}]
        generators: [marginals]
        train_sizes: [60]
        seeds: [0]
        """,
    )
    with pytest.raises(ParameterError, match="engine must be one of local, ray"):
        run_benchmark(cfg, tmp_path / "out", engine="dask")
    with pytest.raises(ParameterError, match="ray_address applies"):
        run_benchmark(cfg, tmp_path / "out", ray_address="auto")
