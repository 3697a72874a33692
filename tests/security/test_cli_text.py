"""Every user-facing message is plain text and one sentence (issue 20, item 6).

Names users choose (columns, targets, files) are printed as they are, never read as markup; a
mistyped command line, a broken model folder, a full disk and the like are one ``error:`` line
with exit code 2 and no traceback.
"""

from __future__ import annotations

import errno
import json
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
from typer.testing import CliRunner

from healthsynth.cli import app
from tests.helpers import real

runner = CliRunner()
MARKUP = "[/x] [bold]b[/bold]"


def invoke(*args: object):
    return runner.invoke(app, [str(a) for a in args])


def one_error_line(result) -> str:
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert lines and lines[0].startswith("error:"), result.output
    return " ".join(result.output.split())


@pytest.fixture(scope="module")
def marked(tmp_path_factory) -> Path:
    """Pima.tr with a column whose name looks like Rich markup."""
    path = tmp_path_factory.mktemp("data") / "p.csv"
    real("MASS/Pima.tr").rename(columns={"bmi": MARKUP}).to_csv(path, index=False)
    return path


def test_markup_in_names_is_printed_as_it_is(marked, tmp_path):
    text = one_error_line(invoke("fit", marked, "--out", tmp_path / "m", "--target", "[/nope]"))
    assert "'[/nope]' is not in the data" in text and MARKUP in text
    out = tmp_path / "[red]model[/red]"
    r = invoke("fit", marked, "--out", out, "--generator", "marginals", "--target", MARKUP)
    assert r.exit_code == 0, r.output
    assert str(out) in " ".join(r.output.split())
    csv = tmp_path / "s[/x].csv"
    r = invoke("sample", out, "-n", "5", "-o", csv)
    assert r.exit_code == 0 and f"to {csv}" in " ".join(r.output.split()), r.output
    assert MARKUP in pd.read_csv(csv).columns


def test_bracketed_text_survives_in_messages(capsys):
    from healthsynth.cli._app import user_errors
    from healthsynth.errors import MissingExtraError

    @user_errors
    def needs_extra() -> None:
        raise MissingExtraError("sdv", "baselines-bsl", "The Gaussian copula")

    with pytest.raises(Exception) as info:
        needs_extra()
    assert getattr(info.value, "exit_code", None) == 2
    assert "healthsynth[baselines-bsl]" in capsys.readouterr().err


@pytest.mark.parametrize(
    "args, fragment",
    [
        (["sample", "m", "-n", "1e20", "-o", "s.csv"], "Invalid value for '-n'"),
        (["sample", "m", "-n", "100000000000000000000", "-o", "s.csv"], "at most"),
        (["fit", "--bogus"], "No such option: --bogus"),
    ],
)
def test_command_line_mistakes_are_one_line(args, fragment, tmp_path):
    r = subprocess.run(
        [sys.executable, "-m", "healthsynth", *args],
        capture_output=True,
        text=True,
        cwd=tmp_path,
    )
    assert r.returncode == 2, r.stderr
    lines = [line for line in r.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error:") and fragment in lines[0], r.stderr


@pytest.fixture()
def model(tmp_path) -> Path:
    data = tmp_path / "pima.csv"
    real("MASS/Pima.tr").to_csv(data, index=False)
    out = tmp_path / "m"
    assert invoke("fit", data, "--out", out, "--generator", "marginals").exit_code == 0
    return out


@pytest.mark.parametrize(
    "file, content, fragment",
    [
        ("generator.json", {"format_version": "one"}, "format_version 'one' is not a whole"),
        ("generator.json", {"format_version": 99}, "newer healthsynth"),
        ("schema.json", {"columns": "abc"}, "schema file"),
        ("schema.json", {"version": "x"}, "schema file"),
    ],
)
def test_broken_model_folders_are_one_sentence(model, tmp_path, file, content, fragment):
    meta = json.loads((model / file).read_text())
    meta.update(content)
    (model / file).write_text(json.dumps(meta))
    text = one_error_line(invoke("sample", model, "-n", "5", "-o", tmp_path / "s.csv"))
    assert fragment in text
    assert not (tmp_path / "s.csv").exists()


def test_a_full_disk_is_one_sentence_and_leaves_nothing(model, tmp_path, monkeypatch):
    def full(self, *args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(pd.DataFrame, "to_csv", full)
    text = one_error_line(invoke("sample", model, "-n", "5", "-o", tmp_path / "s.csv"))
    assert "the disk is full" in text
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m", "pima.csv"]


def test_a_table_too_wide_for_the_memory_is_one_sentence_before_training(tmp_path, monkeypatch):
    """1,000 columns of real values on a machine with 1 GiB free: refused, nothing written."""
    pima = real("MASS/Pima.tr")
    wide = pd.concat(
        [pima.add_suffix(f"_{i}") for i in range(125)], axis=1
    )  # 1,000 columns, the real values repeated
    wide.to_csv(tmp_path / "wide.csv", index=False)
    monkeypatch.setattr("healthsynth.generators._lm._fit._free_memory", lambda: 2**30)
    trained = []
    monkeypatch.setattr(
        "healthsynth.generators._lm._fit.fit_model", lambda *a, **k: trained.append(1)
    )
    out = tmp_path / "m"
    text = one_error_line(
        invoke("fit", tmp_path / "wide.csv", "--out", out, "--generator", "tabular-lm")
    )
    assert "the table has 1,000 modelled columns" in text and "GiB free" in text, text
    assert "model fewer columns" in text and not trained and not out.exists()
