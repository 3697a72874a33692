"""The command line for timelines: export a real cohort, fit on its tables, sample, evaluate."""

from __future__ import annotations

import json

import pandas as pd
import pytest
from typer.testing import CliRunner

from healthsynth.cli import app

runner = CliRunner()


def _ok(args: list[str]) -> str:
    res = runner.invoke(app, args)
    assert res.exit_code == 0, res.output
    return res.output


def _user_error(args: list[str]) -> str:
    res = runner.invoke(app, args)
    assert res.exit_code == 2, res.output
    text = " ".join(res.output.split())
    assert "Traceback" not in text and text.startswith("error:"), text
    return text


@pytest.fixture(scope="module")
def cohort(tmp_path_factory):
    folder = tmp_path_factory.mktemp("nafld")
    _ok(["datasets", "export-timelines", "nafld", "--max-patients", "250", "-o", str(folder)])
    return folder


def _tables(folder, events="events.csv"):
    return [
        "--table", f"patients={folder / 'patients.csv'}",
        "--table", f"events={folder / events}",
        "--table", f"labs={folder / 'labs.csv'}",
    ]  # fmt: skip


@pytest.fixture(scope="module")
def model(cohort, tmp_path_factory):
    out = tmp_path_factory.mktemp("m") / "model"
    text = _ok(
        ["fit", *_tables(cohort), "--key", "id", "--time", "days", "--end", "futime",
         "--death", "status", "--sex", "sex", "--age", "age", "--code-map", "nafld",
         "--epochs", "2", "--out", str(out)]
    )  # fmt: skip
    assert "fitted timeline-lm on 250 patients" in " ".join(text.split())
    return out


def test_export_fit_sample_evaluate(cohort, model, tmp_path):
    meta = json.loads((model / "generator.json").read_text())
    assert meta["generator"] == "timeline-lm" and meta["template"]["roles"]["end"] == "futime"
    # prevalence calibration ran after training (offsets by item name, and one on END)
    assert set(meta["calibration"]) == {"end", "items"} and meta["calibration"]["items"]
    assert set(meta["calibration"]["items"]) <= {f"{t}/{i}" for t, i in meta["codec"]["items"]}
    syn = tmp_path / "syn"
    _ok(["sample", str(model), "-n", "80", "-o", str(syn), "--seed", "1",
         "--condition", "has=diabetes", "--condition", "sex=female"])  # fmt: skip
    p = pd.read_csv(syn / "patients.csv")
    ev = pd.read_csv(syn / "events.csv")
    assert len(p) == 80 and (p["sex"] == "female").all()
    assert ev.loc[ev["event"] == "diabetes", "id"].nunique() == 80
    run = json.loads((syn / "run.json").read_text())
    assert run["unit"] == "patients" and run["conditions"]["has"] == ["diabetes"]
    assert run["threads"]["threads"] >= 1 and run["threads"]["reason"]
    rep = tmp_path / "rep"
    text = _ok(["evaluate", "--real", str(cohort), "--synthetic", str(syn), "--model", str(model),
                "-o", str(rep)])  # fmt: skip
    assert "scores" in text
    scores = json.loads((rep / "scores.json").read_text())
    names = {r["name"] for r in scores["records"]}
    assert {"event_prevalence_r2", "timeline_violations"} <= names


@pytest.mark.parametrize("fmt", ["omop", "meds", "fhir"])
def test_sample_standard_formats(model, tmp_path, fmt):
    out = tmp_path / fmt
    _ok(["sample", str(model), "-n", "12", "--format", fmt, "-o", str(out)])
    files = {p.name for p in out.rglob("*") if p.is_file()}
    expected = {"omop": "person.parquet", "meds": "codes.parquet", "fhir": "Patient-1.json"}
    assert expected[fmt] in files and "run.json" in files


def test_bad_timeline_input_is_one_sentence(cohort, model, tmp_path):
    ev = pd.read_csv(cohort / "events.csv")
    bad = ev.copy()
    bad.loc[0, "id"] = 10**9
    bad.to_csv(tmp_path / "unknown.csv", index=False)
    fit = ["fit", "--key", "id", "--time", "days", "--out", str(tmp_path / "x")]
    text = _user_error([*fit, *_tables(cohort, str(tmp_path / "unknown.csv"))])
    assert "patient ID 1000000000, which is not in" in text
    bad = ev.copy().astype({"days": object})
    bad.loc[3, "days"] = "soon"
    bad.to_csv(tmp_path / "times.csv", index=False)
    text = _user_error([*fit, *_tables(cohort, str(tmp_path / "times.csv"))])
    assert "'soon', which is neither a number of days nor a date" in text
    ev.head(0).to_csv(tmp_path / "empty.csv", index=False)
    assert "no rows" in _user_error([*fit, *_tables(cohort, str(tmp_path / "empty.csv"))])
    p = pd.read_csv(cohort / "patients.csv")
    pd.concat([p, p.head(1)]).to_csv(tmp_path / "dup.csv", index=False)
    dup = ["--table", f"patients={tmp_path / 'dup.csv'}", "--table",
           f"events={cohort / 'events.csv'}"]  # fmt: skip
    assert "more than once" in _user_error([*fit, *dup])
    p.head(1).to_csv(tmp_path / "one.csv", index=False)
    one = ["--table", f"patients={tmp_path / 'one.csv'}", "--table",
           f"events={cohort / 'events.csv'}"]  # fmt: skip
    assert "one patient" in _user_error([*fit, *one])
    assert "--key" in _user_error(["fit", *_tables(cohort), "--out", str(tmp_path / "x")])
    assert "NAME=FILE" in _user_error([*fit, "--table", "patients"])
    assert "not both" in _user_error([*fit, str(cohort / "patients.csv"), *_tables(cohort)])
    assert "--target does not apply" in _user_error([*fit, *_tables(cohort), "--target", "x"])
    assert not (tmp_path / "x").exists()
    # sampling
    assert "is not one of csv" in _user_error(
        ["sample", str(model), "-n", "5", "--format", "xml", "-o", str(tmp_path / "y")]
    )
    assert "never occurs" in _user_error(
        ["sample", str(model), "-n", "5", "-o", str(tmp_path / "y"), "--condition", "has=cancer"]
    )
    assert not (tmp_path / "y").exists()
    # evaluate needs the model folder for the tables' roles
    assert "--model" in _user_error(
        ["evaluate", "--real", str(cohort), "--synthetic", str(cohort), "-o", str(tmp_path / "r")]
    )
