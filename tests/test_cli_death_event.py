"""The command line on a one-row-per-event log with death as an event (survival/mgus2)."""

from __future__ import annotations

import json

import pandas as pd
import pytest
from typer.testing import CliRunner

from healthsynth.cli import app

runner = CliRunner()


def _run(args: list[str], code: int = 0) -> str:
    res = runner.invoke(app, args)
    assert res.exit_code == code, res.output
    return " ".join(res.output.split())


@pytest.fixture(scope="module")
def cohort(tmp_path_factory):
    folder = tmp_path_factory.mktemp("mgus2")
    _run(["datasets", "export-timelines", "mgus2", "-o", str(folder)])
    return folder


def _fit(cohort, out, *extra: str) -> list[str]:
    return [
        "fit", "--table", f"patients={cohort / 'patients.csv'}",
        "--table", f"events={cohort / 'events.csv'}", "--key", "id", "--time", "day",
        "--sex", "sex", "--age", "age", "--epochs", "2", "--out", str(out), *extra,
    ]  # fmt: skip


def test_death_event_fit_sample_omop(cohort, tmp_path):
    model = tmp_path / "model"
    # calibration is tested in tests/generators/test_timeline_calibration.py
    _run(_fit(cohort, model, "--death-event", "death", "--no-calibrate"))
    meta = json.loads((model / "generator.json").read_text())
    assert meta["template"]["roles"]["death_event"] == "death"
    assert "events/death" in meta["structure"]["terminal"]
    syn = tmp_path / "syn"
    _run(["sample", str(model), "-n", "150", "--format", "omop", "-o", str(syn), "--seed", "1"])
    death = pd.read_parquet(syn / "death.parquet")
    cond = pd.read_parquet(syn / "condition_occurrence.parquet")
    assert len(death) > 0 and "death" not in set(cond["condition_source_value"])
    assert death["person_id"].is_unique


def test_bad_death_event_is_one_sentence(cohort, tmp_path):
    out = tmp_path / "x"
    text = _run(_fit(cohort, out, "--death-event", "died"), code=2)
    assert text.startswith("error:") and "the death event 'died' never occurs" in text
    ev = pd.read_csv(cohort / "events.csv")
    late = ev[ev["event"] == "death"].head(2).assign(event="progression")
    late["day"] += 1
    pd.concat([ev, late]).to_csv(tmp_path / "late.csv", index=False)
    args = _fit(cohort, out, "--death-event", "death")
    args[args.index(f"events={cohort / 'events.csv'}")] = f"events={tmp_path / 'late.csv'}"
    text = _run(args, code=2)
    assert "after its death event 'death'" in text and "2 patients have events after death" in text
    assert not out.exists()


def test_structure_flags(cohort, tmp_path):
    model = tmp_path / "loose"
    _run(
        _fit(
            cohort,
            model,
            "--no-learn-structure",
            "--epochs",
            "1",
            "--joint-values",
            "--no-time-context",
            "--no-calibrate",
        )
    )
    meta = json.loads((model / "generator.json").read_text())
    assert meta["codec"]["joint_values"] is True
    assert meta["params"]["calibrate"] is False and meta["calibration"] == {}
    assert meta["params"]["time_context"] is False and not meta["codec"].get("time_context")
    # the death event (MEDS_DEATH is not used here: none was named) is not learned either
    assert meta["structure"] == {
        "always": [],
        "once": [],
        "terminal": [],
        "max_count": {},
        "time_since_start": {},
        "at_end": [],
        "fixed_day": {},
    }
    rules = tmp_path / "rules.json"
    rules.write_text(json.dumps({"terminal": ["progression"]}))
    text = _run(_fit(cohort, tmp_path / "x", "--structure", str(rules)), code=2)
    assert text.startswith("error:") and "structure['terminal'] lists 'events/progression'" in text
    rules.write_text("[1]")
    assert "must hold a JSON object" in _run(
        _fit(cohort, tmp_path / "x", "--structure", str(rules)), code=2
    )
    assert not (tmp_path / "x").exists()
    rules.write_text(json.dumps({"once": []}))
    # (the structure is read from the data before training: one epoch, no calibration)
    _run(_fit(cohort, tmp_path / "m", "--structure", str(rules), "--epochs", "1", "--no-calibrate"))
    meta = json.loads((tmp_path / "m" / "generator.json").read_text())
    # without --death-event, nine patients' progression sorts after a death on the same day
    # (alphabetical order within a day), so death is not learned as terminal
    assert meta["structure"]["once"] == [] and meta["structure"]["terminal"] == []
    _run(
        _fit(cohort, tmp_path / "d", "--structure", str(rules), "--death-event", "death",
             "--epochs", "1", "--no-calibrate")
    )  # fmt: skip
    meta = json.loads((tmp_path / "d" / "generator.json").read_text())
    assert meta["structure"]["once"] == ["events/death"]  # the death event: once and last
    assert meta["structure"]["terminal"] == ["events/death"]
