"""``healthsynth benchmark``: bad input is one line with exit code 2; a run prints progress."""

from __future__ import annotations

import textwrap

from typer.testing import CliRunner

from healthsynth.cli import app

runner = CliRunner()


def invoke(*args):
    return runner.invoke(app, [str(a) for a in args])


def user_error(result, *fragments):
    assert result.exit_code == 2, result.output
    text = " ".join(result.output.split())
    assert "Traceback" not in result.output and "error:" in text
    for f in fragments:
        assert f in text, text


def test_malformed_yaml_exits_2_with_the_line(tmp_path):
    p = tmp_path / "b.yaml"
    p.write_text("datasets: [\ngenerators: [marginals]\n", encoding="utf-8")
    user_error(invoke("benchmark", p, "-o", tmp_path / "out"), "not valid YAML at line")


def test_unknown_generator_exits_2_listing_valid_ones(tmp_path):
    p = tmp_path / "b.yaml"
    p.write_text("datasets: [survival/pbc]\ngenerators: [gan9000]\n", encoding="utf-8")
    user_error(
        invoke("benchmark", p, "-o", tmp_path / "out"), "'gan9000' is not known", "marginals"
    )


def test_missing_data_file_exits_2_and_writes_no_cells(tmp_path):
    p = tmp_path / "b.yaml"
    p.write_text(
        "datasets: [{name: x, path: gone.csv}]\ngenerators: [marginals]\n", encoding="utf-8"
    )
    user_error(invoke("benchmark", p, "-o", tmp_path / "out"), "gone.csv' does not exist")
    assert not (tmp_path / "out" / "cells").exists()


def test_bad_workers_exits_2(tmp_path):
    user_error(
        invoke("benchmark", "default", "-o", tmp_path / "out", "--workers", "0"),
        "--workers must be at least 1",
    )


def test_a_small_run_reports_each_cell_and_the_files(tmp_path):
    p = tmp_path / "b.yaml"
    p.write_text(
        textwrap.dedent("""\
        datasets: [{name: pima, source: MASS/Pima.tr, target: type}]
        generators: [marginals]
        train_sizes: [50]
        seeds: [3]
        metrics: [column_distance, tstr]
        """),
        encoding="utf-8",
    )
    r = invoke("benchmark", p, "-o", tmp_path / "out")
    assert r.exit_code == 0, r.output
    text = " ".join(r.output.split())
    assert "pima · marginals · n=50 · seed 3: ok" in text
    assert "1 cells: 0 already done, 1 run (1 ok)" in text
    r = invoke("benchmark", p, "-o", tmp_path / "out", "--summary-only")
    # rich wraps long paths at the terminal width, even inside a file name
    assert r.exit_code == 0 and "leaderboard.md" in "".join(r.output.split())
