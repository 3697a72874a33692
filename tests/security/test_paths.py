"""Names from model folders, flags and configs never become paths outside their folder."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pandas as pd
import pytest
from typer.testing import CliRunner

from healthsynth.benchmark._config import config_from_data
from healthsynth.data import Dataset, check_name, export_dataset_as, is_plain_name, load_timelines
from healthsynth.errors import DataError, DataFileError, ModelFolderError
from healthsynth.generators import load_generator
from tests.helpers import extra_or_skip

HOSTILE = [
    "../../escaped",
    "../escaped",
    "..",
    ".",
    "/tmp/absolute",
    "a/b",
    "a\\b",
    "C:escaped",
    "a..b",
    "trailing.",
    "CON",
    "nul.csv",
    "com1",
    "",
    " lead",
    "tab\tname",
    "new\nline",
    "ünïcode",
    "x" * 101,
]
PLAIN = ["patients", "labs_2", "a.b", "x-y+z", "_t", "Events", "9", "console", "x" * 100]


def all_files(root: Path) -> set[Path]:
    """Everything under ``root`` but the tool's own bookkeeping (manifests, locks)."""
    return {p for p in root.rglob("*") if ".healthsynth" not in p.name}


# -- the validator ------------------------------------------------------------------------------
@pytest.mark.parametrize("name", HOSTILE)
def test_hostile_names_are_not_plain(name):
    assert not is_plain_name(name)
    with pytest.raises(DataError) as e:
        check_name(name, what="table name", where="in the test")
    message = str(e.value)
    assert message.startswith("table name ") and "in the test" in message
    assert "use only letters, digits and _ . + -" in message and "\n" not in message


@pytest.mark.parametrize("name", PLAIN)
def test_plain_names_pass_and_stay_inside_their_folder(name, tmp_path):
    assert check_name(name) == name
    assert (tmp_path / f"{name}.csv").resolve().parent == tmp_path.resolve()


@pytest.mark.parametrize("value", [None, 3, b"bytes", ["a"]])
def test_non_text_is_refused(value):
    with pytest.raises(DataError, match="not text"):
        check_name(value, what="table name")


# -- datasets -----------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def nafld():
    return load_timelines("nafld", max_patients=60, seed=1)


@pytest.mark.parametrize("name", ["../../escaped", "a/b", "CON"])
def test_dataset_refuses_table_names_that_are_paths(nafld, name, tmp_path):
    tables = dict(nafld.tables)
    tables[name] = tables.pop("labs")
    with pytest.raises(DataError, match=f"table name '{name}'"):
        Dataset.from_tables(tables, key="id", time="days")
    with pytest.raises(DataError, match=f"table name '{name}'"):
        Dataset(tables=tables, key="id", time="days", patients="patients", layouts={})
    # the files are never read: the name is checked first
    with pytest.raises(DataError, match=r"for data file .*nothing\.csv"):
        Dataset.read(
            {"patients": tmp_path / "p.csv", name: tmp_path / "nothing.csv"}, key="id", time="days"
        )


def test_csv_export_writes_only_inside_the_folder(nafld, tmp_path):
    out = tmp_path / "deep" / "out"
    export_dataset_as(nafld, out, fmt="csv")
    assert {p.name for p in all_files(out)} == {f"{n}.csv" for n in nafld.tables}
    assert all_files(tmp_path) == {tmp_path / "deep", out} | all_files(out)


def test_fhir_file_names_never_come_from_hostile_keys(nafld, tmp_path):
    ids = nafld.patient_table["id"]
    keys = {k: f"../../k{i}" if i % 2 else f"k{i}\n" for i, k in enumerate(ids)}
    tables = {n: df.assign(id=df["id"].map(keys)) for n, df in nafld.tables.items()}
    hostile = Dataset.from_tables(tables, key="id", time="days")
    out = tmp_path / "fhir"
    with extra_or_skip():
        export_dataset_as(hostile, out, fmt="fhir")
    files = list(all_files(out))
    assert len(files) == len(keys)
    assert all(is_plain_name(p.name) and p.parent == out for p in files)
    assert all_files(tmp_path) == {out, *files}


# -- timeline model folders -------------------------------------------------------------------
def rename_table(folder: Path, old: str, new: str) -> Path:
    """Rename table ``old`` to ``new`` everywhere in a timeline folder's generator.json."""
    path = folder / "generator.json"
    meta = json.loads(path.read_text(encoding="utf-8"))
    tpl, roles = meta["template"], meta["template"]["roles"]
    tpl["tables"] = {(new if k == old else k): v for k, v in tpl["tables"].items()}
    roles["tables"] = [new if t == old else t for t in roles["tables"]]
    roles["layouts"] = {(new if k == old else k): v for k, v in roles["layouts"].items()}
    if roles["patients"] == old:
        roles["patients"] = new
    meta["codec"]["items"] = [[new if t == old else t, i] for t, i in meta["codec"]["items"]]
    path.write_text(json.dumps(meta), encoding="utf-8")
    return folder


@pytest.mark.parametrize("table", ["labs", "patients"])
@pytest.mark.parametrize("name", ["../../escaped", "/tmp/healthsynth-escaped", "..", "NUL"])
def test_crafted_timeline_folder_cannot_name_files_outside(
    copy_of, timeline_lm_folder, tmp_path, table, name
):
    folder = rename_table(copy_of(timeline_lm_folder), table, name)
    before = all_files(tmp_path)
    with pytest.raises(ModelFolderError) as e:
        load_generator(folder)
    message = str(e.value)
    assert f"table name '{name}' in model folder {folder}" in message and "\n" not in message
    assert all_files(tmp_path) == before
    assert not Path("/tmp/healthsynth-escaped.csv").exists()


def test_sampling_cannot_write_outside_even_past_the_load_check(timeline_lm_folder, tmp_path):
    """Defence in depth: a Dataset refuses a path-like table name wherever it is built."""
    gen = load_generator(timeline_lm_folder)
    gen.template_ = json.loads(json.dumps(gen.template_))
    gen.template_["tables"]["../escaped"] = gen.template_["tables"].pop("labs")
    out = tmp_path / "a" / "out"
    with pytest.raises(DataError, match="table name '../escaped'"):
        gen.sample_to_folder(20, out, seed=0)
    assert not (tmp_path / "a" / "escaped.csv").exists() and not out.exists()


def test_genuine_timeline_folder_samples_inside_its_output(timeline_lm_folder, tmp_path):
    out = tmp_path / "out"
    load_generator(timeline_lm_folder).sample_to_folder(15, out, seed=0)
    assert {p.name for p in all_files(out)} == {"patients.csv", "events.csv", "labs.csv"}
    assert all_files(tmp_path) == {out, *all_files(out)}


# -- benchmark labels become folders ----------------------------------------------------------
@pytest.mark.parametrize("label", ["a..b", "CON", "x" * 101, "abc\n", "../x", "trailing."])
def test_benchmark_labels_must_be_plain(label, tmp_path):
    good = {"datasets": ["survival/colon"], "generators": ["marginals"]}
    with pytest.raises(DataFileError, match="may hold only letters|needs a 'name'"):
        config_from_data(
            {**good, "datasets": [{"name": label, "source": "survival/colon"}]},
            source=tmp_path / "c.yaml",
        )
    with pytest.raises(DataFileError, match="needs a 'name'"):
        config_from_data({**good, "generators": [{"name": label}]}, source=tmp_path / "c.yaml")


# -- the command line ---------------------------------------------------------------------------
def test_cli_table_flag_refuses_a_path_as_name(nafld, tmp_path):
    from healthsynth.cli import app

    for n, df in nafld.tables.items():
        df.to_csv(tmp_path / f"{n}.csv", index=False)
    args = ["fit", "--table", f"patients={tmp_path / 'patients.csv'}"]
    args += ["--table", f"../../escaped={tmp_path / 'labs.csv'}"]
    args += ["--key", "id", "--time", "days", "--out", str(tmp_path / "m")]
    cwd = os.getcwd()
    os.chdir(tmp_path)
    try:
        result = CliRunner().invoke(app, args)
    finally:
        os.chdir(cwd)
    assert result.exit_code == 2, result.output
    text = " ".join(result.output.split())
    assert "table name '../../escaped'" in text and "Traceback" not in result.output
    assert not (tmp_path / "m").exists()
    assert pd.read_csv(tmp_path / "labs.csv").shape[0] > 0


def test_cli_sample_of_a_crafted_timeline_folder_writes_nothing(
    copy_of, timeline_lm_folder, tmp_path
):
    from healthsynth.cli import app

    folder = rename_table(copy_of(timeline_lm_folder), "labs", "../escaped")
    before = all_files(tmp_path)
    out = tmp_path / "a" / "out"
    result = CliRunner().invoke(app, ["sample", str(folder), "-n", "10", "-o", str(out)])
    assert result.exit_code == 2, result.output
    assert "table name '../escaped' in model folder" in " ".join(result.output.split())
    # (the output lock may leave -o's new parent folder behind, empty)
    assert {p for p in all_files(tmp_path) if p.is_file()} == {p for p in before if p.is_file()}
    assert not out.exists() and not (tmp_path / "a" / "escaped.csv").exists()


def test_cli_evaluate_reads_no_file_named_by_a_crafted_timeline_folder(
    copy_of, timeline_lm_folder, nafld, tmp_path
):
    """evaluate --model reads NAME.csv from --real for each table NAME the folder lists."""
    from healthsynth.cli import app

    folder = rename_table(copy_of(timeline_lm_folder), "labs", "../secret")
    for side in ("real", "syn"):
        nafld.write(tmp_path / side)
    # what a traversal would reach: tmp_path/secret.csv, one level above --real
    nafld.tables["labs"].to_csv(tmp_path / "secret.csv", index=False)
    args = ["evaluate", "--real", tmp_path / "real", "--synthetic", tmp_path / "syn"]
    args += ["--model", folder, "--out", tmp_path / "report"]
    result = CliRunner().invoke(app, [str(a) for a in args])
    assert result.exit_code == 2, result.output
    assert "table name '../secret' in model folder" in " ".join(result.output.split())
    assert not (tmp_path / "report").exists()
