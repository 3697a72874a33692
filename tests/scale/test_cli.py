"""``sample`` and ``evaluate`` with ``--engine ray``: happy path and every bad input (exit 2)."""

from __future__ import annotations

import json
import socket
import sys

import pandas as pd
import pytest
from typer.testing import CliRunner

from healthsynth.cli import app
from tests.helpers import real

runner = CliRunner()


def invoke(*args):
    return runner.invoke(app, [str(a) for a in args])


def user_error(result, *fragments):
    assert result.exit_code == 2, result.output
    text = " ".join(result.output.split())
    assert "Traceback" not in result.output and "error:" in text
    for f in fragments:
        assert f in text, text


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    root = tmp_path_factory.mktemp("cli")
    df = real("survival/pbc")
    df.iloc[:300].to_csv(root / "train.csv", index=False)
    df.iloc[300:].to_csv(root / "holdout.csv", index=False)
    r = invoke("fit", root / "train.csv", "--generator", "marginals", "--out", root / "model")
    assert r.exit_code == 0, r.output
    return root


def test_sample_then_evaluate_on_ray(ray_cluster, files, tmp_path):
    shards = tmp_path / "shards"
    r = invoke(
        "sample",
        files / "model",
        "-n",
        5000,
        "-o",
        shards,
        "--engine",
        "ray",
        "--workers",
        2,
        "--seed",
        3,
        "--block-size",
        1000,
    )
    assert r.exit_code == 0, r.output
    assert "5 blocks on 2 Ray workers" in " ".join(r.output.split())
    assert len(list(shards.glob("part-*.parquet"))) == 5
    run = json.loads((shards / "_run.json").read_text())
    assert run["engine"] == "ray" and run["seed"] == 3 and run["n"] == 5000
    assert len(pd.read_parquet(shards)) == 5000
    report = tmp_path / "report"
    r = invoke(
        "evaluate",
        "--real",
        files / "train.csv",
        "--holdout",
        files / "holdout.csv",
        "--synthetic",
        shards,
        "--target",
        "status",
        "--engine",
        "ray",
        "--workers",
        2,
        "--metrics",
        "column_distance,dcr,tstr,coverage",
        "--subsample",
        2000,
        "-o",
        report,
    )
    assert r.exit_code == 0, r.output
    scores = json.loads((report / "scores.json").read_text())
    assert scores["meta"]["scale"]["engine"] == "ray"
    assert scores["meta"]["scale"]["synthetic_rows"] == 5000
    # the same shards evaluated in one process: the same figures
    r = invoke(
        "evaluate",
        "--real",
        files / "train.csv",
        "--holdout",
        files / "holdout.csv",
        "--synthetic",
        shards,
        "--target",
        "status",
        "--metrics",
        "column_distance,dcr,tstr,coverage",
        "--subsample",
        2000,
        "-o",
        tmp_path / "local",
    )
    assert r.exit_code == 0, r.output
    local = json.loads((tmp_path / "local" / "scores.json").read_text())
    assert [x["value"] for x in local["records"]] == [x["value"] for x in scores["records"]]


def test_bad_engine_flags_are_one_line(files, tmp_path):
    model, out = files / "model", tmp_path / "x.parquet"
    user_error(
        invoke("sample", model, "-n", 10, "-o", out, "--engine", "ray", "--workers", 0),
        "--workers must be a positive whole number",
    )
    user_error(
        invoke("sample", model, "-n", 10, "-o", out, "--workers", 2),
        "--workers applies to --engine ray",
    )
    user_error(
        invoke("sample", model, "-n", 10, "-o", out, "--ray-address", "auto"),
        "--ray-address applies to --engine ray",
    )
    user_error(
        invoke("sample", model, "-n", 10, "-o", out, "--engine", "spark"),
        "--engine must be one of local, ray",
    )
    user_error(
        invoke("sample", model, "-n", 10, "-o", out, "--engine", "ray", "--herding", 1),
        "--herding applies to tabular-lm with --engine local",
    )
    user_error(
        invoke(
            "evaluate",
            "--real",
            files / "train.csv",
            "--synthetic",
            files / "holdout.csv",
            "--engine",
            "ray",
            "--workers",
            -1,
            "-o",
            tmp_path / "r",
        ),
        "--workers must be a positive whole number",
    )
    assert not out.exists() and not (tmp_path / "r").exists()


def test_unreachable_cluster_is_one_line(files, tmp_path):
    from tests.scale.conftest import ray_or_skip

    ray_or_skip()
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    r = invoke(
        "sample",
        files / "model",
        "-n",
        10,
        "-o",
        tmp_path / "x.parquet",
        "--engine",
        "ray",
        "--ray-address",
        f"127.0.0.1:{port}",
        "--workers",
        1,
    )
    user_error(r, f"cannot reach the Ray cluster at 127.0.0.1:{port}")
    assert list(tmp_path.iterdir()) == []


def test_ray_not_installed_names_the_extra(files, tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "ray", None)
    r = invoke("sample", files / "model", "-n", 10, "-o", tmp_path / "x", "--engine", "ray")
    user_error(r, "pip install 'healthsynth[ray]'")
    r = invoke(
        "evaluate",
        "--real",
        files / "train.csv",
        "--synthetic",
        files / "holdout.csv",
        "--engine",
        "ray",
        "-o",
        tmp_path / "r",
    )
    user_error(r, "pip install 'healthsynth[ray]'")
    assert list(tmp_path.iterdir()) == []


def test_benchmark_on_ray(ray_cluster, tmp_path):
    cfg = tmp_path / "bench.yaml"
    cfg.write_text(
        "datasets: [{name: pima, source: MASS/Pima.tr, target: type}]\n"
        "generators: [marginals]\ntrain_sizes: [60]\nseeds: [0, 1]\n"
        "metrics: [column_distance, coverage]\n",
        encoding="utf-8",
    )
    r = invoke("benchmark", cfg, "-o", tmp_path / "out", "--engine", "ray", "--workers", 2)
    assert r.exit_code == 0, r.output
    assert "2 cells: 0 already done, 2 run (2 ok)" in " ".join(r.output.split())
    user_error(
        invoke("benchmark", cfg, "-o", tmp_path / "out2", "--ray-address", "auto"),
        "--ray-address applies to --engine ray",
    )
