"""Running benchmarks: cells, failures, time limits, resuming after a kill, summaries."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time

import pandas as pd
import pytest

from healthsynth.benchmark import _runner, load_config, plan, run_benchmark, training_rows
from healthsynth.benchmark._summary import experiment_table, frontier, rank_table

FAST_METRICS = "[column_distance, detection_auc, tstr, dcr, coverage]"


def config(tmp_path, body: str, name: str = "bench.yaml"):
    p = tmp_path / name
    p.write_text(textwrap.dedent(body), encoding="utf-8")
    return load_config(p)


def cells(out):
    return sorted(out.glob("cells/*/*/*/cell.json"))


def test_cells_run_failures_are_recorded_and_summaries_written(tmp_path):
    cfg = config(
        tmp_path,
        f"""\
        datasets:
          - {{name: pima, source: MASS/Pima.tr, target: type, sensitive: [age]}}
          - {{name: pbc, source: survival/pbc, drop: [id], target: status, sensitive: [sex]}}
        generators:
          - marginals
          - {{name: broken-lm, generator: tabular-lm, params: {{base_model: /no/such/model}}}}
        train_sizes: [60, 5000]
        seeds: [0]
        metrics: {FAST_METRICS}
        """,
    )
    with pytest.warns(UserWarning) as caught:
        run = run_benchmark(cfg, tmp_path / "out", workers=2)
    said = sorted(str(w.message) for w in caught)
    assert said == [
        "training size 5000 is larger than the 160 training rows of dataset 'pima'; its "
        "cells are capped at 160 rows",
        "training size 5000 is larger than the 334 training rows of dataset 'pbc'; its "
        "cells are capped at 334 rows",
    ]
    assert run.cells == 8 and run.ran == 8
    assert run.status == {"ok": 4, "failed": 4}
    res = pd.read_csv(tmp_path / "out" / "results.csv")
    status = res[res["metric"] == "cell_status"]
    failed = status[status["status"] == "failed"]
    assert set(failed["generator"]) == {"broken-lm"}
    assert failed["message"].str.contains("/no/such/model").all()
    # a training size beyond the data is capped, with a note in the cell record
    info = json.loads((tmp_path / "out/cells/pima/marginals/n5000-s0/cell.json").read_text())
    assert info["train_rows"] == 160 and "capped at 160" in info["notes"][0]
    ok = res[(res["generator"] == "marginals") & (res["metric"] == "tstr_auc")]
    assert len(ok) == 4 and ok["value"].between(0, 1).all()
    assert set(ok["train_rows"]) == {60, 160, 334}
    for f in ("leaderboard.md", "report.html", "config.json"):
        assert (tmp_path / "out" / f).stat().st_size > 500
    board = (tmp_path / "out" / "leaderboard.md").read_text()
    assert "Cells that did not finish" in board and "broken-lm" in board
    html = (tmp_path / "out" / "report.html").read_text()
    assert "<svg" in html and "Privacy–utility frontier" in html


def test_sizes_beyond_a_dataset_are_not_fitted_twice_on_the_same_rows(tmp_path):
    body = """\
        datasets:
          - {name: pima, source: MASS/Pima.tr, target: type}
          - {name: pbc, source: survival/pbc, drop: [id], target: status}
        generators: [marginals]
        train_sizes: [50, 200, 500, %s]
        seeds: [0, 1]
        metrics: [column_distance]
        """
    with_all = config(tmp_path, body % "all", "a.yaml")
    rows = training_rows(with_all)
    assert rows == {"pima": 160, "pbc": 334}

    def sizes(cfg, name):
        return sorted({str(c.size) for c in plan(cfg, rows) if c.dataset.name == name})

    # 'all' already trains on every row: the capped sizes would repeat it
    assert sizes(with_all, "pima") == ["50", "all"]
    assert sizes(with_all, "pbc") == ["200", "50", "all"]
    assert len(plan(with_all)) == 16  # without the row counts nothing is left out
    # without 'all', the smallest capped size stands for the dataset's full rows
    no_all = config(tmp_path, body.replace(", %s", ""), "b.yaml")
    assert sizes(no_all, "pima") == ["200", "50"]
    assert sizes(no_all, "pbc") == ["200", "50", "500"]
    with pytest.warns(UserWarning, match="the larger sizes \\(500\\) left out"):
        run = run_benchmark(no_all, tmp_path / "out", workers=2)
    assert run.cells == 10 and run.status == {"ok": 10}


def test_a_cell_over_its_time_budget_is_stopped_and_recorded(tmp_path, monkeypatch):
    monkeypatch.setattr(_runner, "_GRACE_S", 0.5)
    cfg = config(
        tmp_path,
        """\
        datasets: [{name: pima, source: MASS/Pima.tr, target: type}]
        generators: [{name: tabular-lm, params: {epochs: 500, privacy_stop: false, max_time: 60}}]
        train_sizes: [all]
        seeds: [0]
        time_budget_per_cell_s: 1
        """,
    )
    started = time.perf_counter()
    run = run_benchmark(cfg, tmp_path / "out")
    assert time.perf_counter() - started < 30
    assert run.status == {"timeout": 1}
    info = json.loads(cells(tmp_path / "out")[0].read_text())
    assert info["status"] == "timeout" and "time budget of 1 s" in info["error"]


def test_a_killed_run_resumes_where_it_stopped(tmp_path):
    body = f"""\
        datasets: [{{name: pima, source: MASS/Pima.tr, target: type}}]
        generators: [marginals]
        train_sizes: [40, 80, all]
        seeds: [0, 1]
        metrics: {FAST_METRICS}
        """
    (tmp_path / "bench.yaml").write_text(textwrap.dedent(body), encoding="utf-8")
    out = tmp_path / "out"
    cmd = [
        sys.executable,
        "-c",
        "from healthsynth.cli import main; main()",
        "benchmark",
        str(tmp_path / "bench.yaml"),
        "-o",
        str(out),
        "--workers",
        "1",
    ]
    proc = subprocess.Popen(
        cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True
    )
    deadline = time.time() + 120
    while len(cells(out)) < 2 and time.time() < deadline and proc.poll() is None:
        time.sleep(0.05)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    finished = {p: p.stat().st_mtime_ns for p in cells(out)}
    assert 2 <= len(finished) < 6, "the kill should land mid-run"
    assert not (out / "results.csv").exists()
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert f"{len(finished)} already done" in " ".join(done.stdout.split())
    assert len(cells(out)) == 6
    for p, mtime in finished.items():  # finished cells were kept, not run again
        assert p.stat().st_mtime_ns == mtime
    res = pd.read_csv(out / "results.csv")
    assert (res[res["metric"] == "cell_status"]["status"] == "ok").sum() == 6
    # a changed setting reruns only the cells it touches; --retry-failed is accepted
    cfg = load_config(tmp_path / "bench.yaml")
    again = run_benchmark(cfg, out)
    assert again.ran == 0 and again.skipped == 6


def test_class_imbalance_balances_the_classes_and_scores_the_minority(tmp_path):
    cfg = config(
        tmp_path,
        """\
        experiment: class-imbalance
        datasets: [{name: pima, source: MASS/Pima.tr, target: type, sensitive: [age]}]
        generators: [none, class-weights, marginals]
        train_sizes: [all]
        seeds: [0, 1]
        """,
    )
    run = run_benchmark(cfg, tmp_path / "out", isolate=False)
    assert run.status == {"ok": 6}
    info = json.loads((tmp_path / "out/cells/pima/marginals/nall-s0/cell.json").read_text())
    (aug,) = info["augmented"]
    assert aug["conditions"] == {"type": "Yes"}
    from healthsynth.benchmark._cells import split_for

    train = split_for(cfg.datasets[0], "all", 0)[0]
    counts = train["type"].value_counts()
    assert aug["rows"] == counts["No"] - counts["Yes"] > 0
    res = pd.read_csv(tmp_path / "out" / "results.csv")
    table = experiment_table(res)
    f1 = table[(table["metric"] == "minority_f1")].set_index("generator")
    assert set(f1.index) == {"none", "class-weights", "marginals"}
    assert f1.loc["none", "gain"] == 0 and f1["mean"].between(0, 1).all()
    assert "minority_recall" in set(table["metric"]) and "balanced_accuracy" in set(table["metric"])


def test_health_equity_grows_the_smallest_subgroup(tmp_path):
    cfg = config(
        tmp_path,
        """\
        experiment: health-equity
        datasets: [{name: pbc, source: survival/pbc, drop: [id], target: status, sensitive: [sex]}]
        generators: [none, reweighting, marginals]
        train_sizes: [all]
        seeds: [0]
        """,
    )
    run = run_benchmark(cfg, tmp_path / "out", isolate=False)
    assert run.status == {"ok": 3}
    info = json.loads((tmp_path / "out/cells/pbc/marginals/nall-s0/cell.json").read_text())
    assert info["augmented"][0]["conditions"] == {"sex": "m"}
    res = pd.read_csv(tmp_path / "out" / "results.csv")
    sub = res[res["metric"] == "subgroup_auc"]
    assert set(sub["subgroup"]) == {"sex=m", "sex=f"}
    assert set(sub["generator"]) == {"none", "reweighting", "marginals"}
    assert "health-equity" in (tmp_path / "out" / "report.html").read_text()


def test_health_equity_refuses_a_continuous_sensitive_column(tmp_path):
    cfg = config(
        tmp_path,
        """\
        experiment: health-equity
        datasets: [{name: pima, source: MASS/Pima.tr, target: type, sensitive: [glu]}]
        generators: [none]
        seeds: [0]
        """,
    )
    run = run_benchmark(cfg, tmp_path / "out", isolate=False)
    assert run.status == {"failed": 1}
    info = json.loads(cells(tmp_path / "out")[0].read_text())
    assert "needs a sensitive column with groups; 'glu'" in info["error"]


def _results(rows):
    base = {
        "train_size": "all",
        "train_rows": 100,
        "status": "ok",
        "subgroup": None,
        "dimension": "utility",
        "reference": None,
    }
    return pd.DataFrame([{**base, **r} for r in rows])


def test_frontier_and_ranks_follow_the_definitions():
    rows = []
    for gen, u, p in [("a", 0.80, 0.9), ("b", 0.70, 1.1), ("c", 0.65, 0.95), ("d", 0.80, 0.9)]:
        for seed in (0, 1):
            rows += [
                {"dataset": "x", "generator": gen, "seed": seed, "metric": "tstr_auc", "value": u},
                {
                    "dataset": "x",
                    "generator": gen,
                    "seed": seed,
                    "metric": "dcr_median_ratio",
                    "value": p,
                    "dimension": "privacy",
                },
            ]
    fr = frontier(_results(rows)).set_index("generator")
    assert fr["on_frontier"].to_dict() == {"a": True, "b": True, "c": False, "d": True}
    assert fr.loc["c", "dominated_by"] == "b"
    ranks = rank_table(_results(rows))
    assert ranks.loc["b", "privacy"] == 1 and ranks.loc["c", "utility"] == 4
    assert ranks.loc["a", "utility"] == ranks.loc["d", "utility"] == 1.5


def test_subgroup_auc_with_two_of_three_classes_present():
    import numpy as np

    from healthsynth.benchmark._experiments import _auc

    y = np.array([0, 2, 0, 2, 2])
    proba = np.array([[0.7, 0.1, 0.2], [0.1, 0.1, 0.8], [0.5, 0.3, 0.2], [0.3, 0.2, 0.5],
                      [0.2, 0.2, 0.6]])  # fmt: skip
    assert _auc(y, proba) == 1.0
    assert _auc(np.array([1, 1]), proba[:2]) is None
