"""No user file is ever changed or deleted: folder ownership, protected inputs, locks, leftovers.

Each case of the adversarial review (issue 20, items 1 and 7) is run through the real command
line on real data, and the test checks both the one-sentence refusal and that every file the
user had is still there, byte for byte.
"""

from __future__ import annotations

import hashlib
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from typer.testing import CliRunner

from healthsynth.cli import app
from healthsynth.data import atomic_folder, atomic_path, output_lock
from healthsynth.data._outputs import MANIFEST
from tests.helpers import real

runner = CliRunner()


def invoke(*args: object):
    return runner.invoke(app, [str(a) for a in args])


def refused(result, *fragments: str) -> str:
    assert result.exit_code == 2, result.output
    text = " ".join(result.output.split())
    assert "Traceback" not in result.output and text.startswith("error:"), text
    for f in fragments:
        assert f in text, text
    return text


def snapshot(folder: Path) -> dict[str, str]:
    """Every file under ``folder`` with the SHA-256 of its bytes."""
    return {
        p.relative_to(folder).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


@pytest.fixture(scope="module")
def pima(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("data") / "pima.csv"
    real("MASS/Pima.tr").to_csv(path, index=False)
    return path


@pytest.fixture(scope="module")
def model(pima, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("models") / "m"
    r = invoke("fit", pima, "--out", out, "--generator", "marginals", "--target", "type")
    assert r.exit_code == 0, r.output
    return out


# -- item 1: data loss ------------------------------------------------------------------------
def test_fit_never_deletes_a_folder_holding_other_files(pima, model, tmp_path):
    target = tmp_path / "work"
    target.mkdir()
    (target / "generator.json").write_text(json.dumps({"format": "healthsynth.generator"}))
    (target / "thesis.docx").write_bytes(b"years of work")
    (target / "figures").mkdir()
    (target / "figures" / "fig1.png").write_bytes(b"\x89PNG")
    before = snapshot(target)
    refused(
        invoke("fit", pima, "--out", target, "--generator", "marginals"),
        "which healthsynth did not write",
    )
    assert snapshot(target) == before


def test_a_folder_changed_after_healthsynth_wrote_it_is_not_replaced(pima, model, tmp_path):
    copy = tmp_path / "m"
    r = invoke("fit", pima, "--out", copy, "--generator", "marginals")
    assert r.exit_code == 0, r.output
    assert invoke("fit", pima, "--out", copy, "--generator", "marginals").exit_code == 0
    (copy / "notes.txt").write_text("mine")
    before = snapshot(copy)
    refused(invoke("fit", pima, "--out", copy, "--generator", "marginals"), "notes.txt")
    assert snapshot(copy) == before
    (copy / "notes.txt").unlink()
    elsewhere = tmp_path / "elsewhere.txt"
    elsewhere.write_text("mine too")
    (copy / "link").symlink_to(elsewhere)  # a link is not healthsynth's either
    refused(invoke("fit", pima, "--out", copy, "--generator", "marginals"), "'link'")
    assert elsewhere.read_text() == "mine too"


def test_sample_never_writes_over_the_training_file(pima, model):
    before = pima.read_bytes()
    for extra in ([], ["--overwrite"]):
        refused(invoke("sample", model, "-n", "5", "-o", pima, *extra), "input of this model")
    assert pima.read_bytes() == before


def test_sample_never_writes_over_a_users_file_without_overwrite(model, tmp_path):
    mine = tmp_path / "results.csv"
    mine.write_text("a,b\n1,2\n")
    refused(invoke("sample", model, "-n", "5", "-o", mine), "--overwrite")
    assert mine.read_text() == "a,b\n1,2\n"
    assert invoke("sample", model, "-n", "5", "-o", mine, "--overwrite").exit_code == 0
    assert len(mine.read_text().splitlines()) == 6


def test_sample_replaces_its_own_earlier_output(model, tmp_path):
    out = tmp_path / "s.csv"
    for n in (7, 4):
        r = invoke("sample", model, "-n", n, "-o", out, "--seed", "1")
        assert r.exit_code == 0, r.output
    assert len(out.read_text().splitlines()) == 5
    # once the user edits the file, it is theirs
    out.write_text(out.read_text() + "1,2,3,4,5,6,7,8\n")
    refused(invoke("sample", model, "-n", "4", "-o", out), "did not write")


def test_sample_never_writes_into_the_model_folder(model):
    before = snapshot(model)
    refused(
        invoke("sample", model, "-n", "5", "-o", model / "new.csv"), "written and replaced whole"
    )
    refused(invoke("sample", model, "-n", "5", "-o", model), "use a .csv or .parquet file")
    assert snapshot(model) == before


def test_evaluate_report_folder_rules(pima, model, tmp_path):
    syn = tmp_path / "syn.csv"
    assert invoke("sample", model, "-n", "50", "-o", syn).exit_code == 0
    a_file = tmp_path / "report.txt"
    a_file.write_text("keep")
    refused(invoke("evaluate", "--real", pima, "--synthetic", syn, "-o", a_file), "not a folder")
    assert a_file.read_text() == "keep"
    # the folder holding the inputs is not a report folder
    refused(invoke("evaluate", "--real", pima, "--synthetic", syn, "-o", tmp_path), "syn.csv")
    rep = tmp_path / "rep"
    for _ in range(2):  # an earlier report is replaced
        args = ["--real", pima, "--synthetic", syn, "-o", rep, "--metrics", "column_distance"]
        r = invoke("evaluate", *args)
        assert r.exit_code == 0, r.output
    assert (rep / "report.html").exists() and (rep / MANIFEST).exists()


def test_timeline_sample_never_replaces_real_tables(tmp_path):
    cohort = tmp_path / "nafld"
    r = invoke("datasets", "export-timelines", "nafld", "--max-patients", "60", "-o", cohort)
    assert r.exit_code == 0, r.output
    model = tmp_path / "tl"
    r = invoke(
        "fit", "--table", f"patients={cohort / 'patients.csv'}",
        "--table", f"events={cohort / 'events.csv'}", "--table", f"labs={cohort / 'labs.csv'}",
        "--key", "id", "--time", "days", "--epochs", "1", "--no-calibrate", "--out", model,
    )  # fmt: skip
    assert r.exit_code == 0, r.output
    before = snapshot(cohort)
    # the exported real cohort is healthsynth's output, but it is this model's input
    refused(invoke("sample", model, "-n", "5", "-o", cohort), "input of this model")
    # a folder with a user's own patients.csv / events.csv
    own = tmp_path / "own"
    own.mkdir()
    (own / "patients.csv").write_text("id,age\n1,50\n")
    (own / "events.csv").write_text("id,days,event\n1,3,x\n")
    (own / "run.json").write_text("{}")
    own_before = snapshot(own)
    refused(invoke("sample", model, "-n", "5", "-o", own), "did not write")
    assert snapshot(own) == own_before and snapshot(cohort) == before
    out = tmp_path / "syn"
    for _ in range(2):
        r = invoke("sample", model, "-n", "5", "-o", out)
        assert r.exit_code == 0, r.output
    assert json.loads((out / MANIFEST).read_text())["files"]["run.json"] > 0


def test_output_is_checked_before_training(pima, tmp_path, monkeypatch):
    from healthsynth.generators.marginals import IndependentMarginals

    def no_training(*args, **kwargs):
        raise AssertionError("trained before checking --out")

    monkeypatch.setattr(IndependentMarginals, "fit", no_training)
    busy = tmp_path / "busy"
    busy.mkdir()
    (busy / "x.txt").write_text("x")
    refused(invoke("fit", pima, "--out", busy, "--generator", "marginals"), "x.txt")
    refused(invoke("fit", pima, "--out", pima, "--generator", "marginals"), "not a folder")


# -- item 7: races and leftovers --------------------------------------------------------------
def test_a_second_writer_is_refused_at_once(pima, tmp_path):
    out = tmp_path / "m"
    holder = subprocess.Popen(
        [sys.executable, "-c",
         "import sys, time; from healthsynth.data import output_lock\n"
         f"with output_lock({str(out)!r}):\n print('held', flush=True); time.sleep(60)"],
        stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "held"
        start = time.perf_counter()
        refused(
            invoke("fit", pima, "--out", out, "--generator", "marginals"),
            "another healthsynth run is writing",
        )
        assert time.perf_counter() - start < 30
        assert not out.exists()
    finally:
        holder.kill()
        holder.wait()
        if holder.stdout is not None:
            holder.stdout.close()
    assert invoke("fit", pima, "--out", out, "--generator", "marginals").exit_code == 0


def test_the_lock_is_reentrant_and_released(tmp_path):
    target = tmp_path / "x"
    with output_lock(target), output_lock(target), atomic_path(target) as tmp:
        tmp.write_text("ok")
    assert target.read_text() == "ok"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["x"]


def _dead_pid() -> int:
    p = subprocess.Popen([sys.executable, "-c", "pass"])
    p.wait()
    return p.pid


def test_leftovers_of_a_killed_run_are_removed_by_the_next(tmp_path):
    pid = _dead_pid()
    stale_file = tmp_path / f".s.csv.{pid}.0123abcd.healthsynth-tmp"
    stale_file.write_text("half")
    stale_dir = tmp_path / f".m.{pid}.89abcdef.healthsynth-tmp"
    (stale_dir / "model").mkdir(parents=True)
    alive = tmp_path / f".s.csv.{os.getpid()}.0123abcd.healthsynth-tmp"  # a live writer's
    alive.write_text("busy")
    with atomic_path(tmp_path / "s.csv") as tmp:
        tmp.write_text("new")
    with atomic_folder(tmp_path / "m", action="write", kind="test") as tmp:
        (tmp / "a.txt").write_text("a")
    assert not stale_file.exists() and not stale_dir.exists() and alive.exists()


def test_a_folder_left_half_swapped_by_a_kill_is_restored(tmp_path):
    with atomic_folder(tmp_path / "m", action="write", kind="test") as tmp:
        (tmp / "a.txt").write_text("first")
    # killed between moving the old folder aside and moving the new one in
    os.replace(tmp_path / "m", tmp_path / f".m.{_dead_pid()}.0badf00d.healthsynth-old")
    # the next writer puts it back first; when that writer fails, the old folder is intact
    with pytest.raises(RuntimeError, match="boom"):
        with atomic_folder(tmp_path / "m", action="write", kind="test"):
            raise RuntimeError("boom")
    assert (tmp_path / "m" / "a.txt").read_text() == "first"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m"]


def test_killed_sample_leaves_nothing_the_next_run_keeps(model, tmp_path):
    out = tmp_path / "big.csv"
    proc = subprocess.Popen(
        [sys.executable, "-m", "healthsynth", "sample", str(model), "-n", "50000000",
         "-o", str(out)],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    deadline = time.time() + 120
    temps: list[Path] = []
    while time.time() < deadline and not temps:
        temps = [p for p in tmp_path.iterdir() if p.name.endswith(".healthsynth-tmp")]
        time.sleep(0.2)
    time.sleep(1.0)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert temps and temps[0].exists() and not out.exists()
    r = invoke("sample", model, "-n", "5", "-o", out)
    assert r.exit_code == 0, r.output
    assert sorted(p.name for p in tmp_path.iterdir()) == ["big.csv", "big.csv.run.json"]
