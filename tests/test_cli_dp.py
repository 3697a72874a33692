"""The command line of issue 16: ``fit --dp-*`` and ``healthsynth audit``.

The tests that train with differential privacy need opacus (extra ``dp``): they skip without
it, and fail where every extra must be there (``HEALTHSYNTH_REQUIRE_EXTRAS=1``).
"""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from healthsynth.cli import app
from tests.generators.test_dp import opacus  # noqa: F401 - the fixture
from tests.helpers import real

runner = CliRunner()


def invoke(*args: object):
    return runner.invoke(app, [str(a) for a in args])


def assert_user_error(result, *fragments: str) -> None:
    assert result.exit_code == 2, result.output
    text = " ".join(result.output.split())
    assert "Traceback" not in result.output and "error:" in text
    assert len([line for line in result.output.splitlines() if "error:" in line]) == 1
    for f in fragments:
        assert f in text, text


@pytest.fixture(scope="module")
def pima_csv(tmp_path_factory):
    path = tmp_path_factory.mktemp("data") / "pima.csv"
    real("MASS/Pima.tr", 120).to_csv(path, index=False)
    return path


@pytest.fixture(scope="module")
def small_model(pima_csv, tmp_path_factory):
    out = tmp_path_factory.mktemp("models") / "pima"
    r = invoke("fit", pima_csv, "-o", out, "--target", "type", "--epochs", "1", "--seed", "0")
    assert r.exit_code == 0, r.output
    return out


def test_fit_with_dp_flags_trains_privately_and_audits(opacus, pima_csv, tmp_path):  # noqa: F811
    model = tmp_path / "dp-model"
    r = invoke(
        "fit", pima_csv, "-o", model, "--target", "type", "--epochs", "2",
        "--dp-epsilon", "4", "--dp-delta", "1e-4", "--dp-max-grad-norm", "0.5",
    )  # fmt: skip
    assert r.exit_code == 0, r.output
    assert "differential privacy: ε =" in r.output and "rdp accountant" in r.output
    rec = json.loads((model / "training.json").read_text())
    dp = rec["dp"]
    assert rec["strategy"] == "dp-sgd" and dp["epsilon_target"] == 4.0
    assert 0 < dp["epsilon"] <= 4.0 + 1e-6 and dp["delta"] == 1e-4
    assert dp["max_grad_norm"] == 0.5 and dp["noise_multiplier"] > 0
    assert dp["n_examples"] == 120 and dp["outside_guarantee"]

    report = tmp_path / "audit"
    r = invoke(
        "audit", model, "--data", pima_csv, "-o", report,
        "--canaries", "3", "--candidates", "40", "--samples", "300",
    )  # fmt: skip
    assert r.exit_code == 0, r.output
    assert "canary exposure" in r.output and "exact canary copies in 300 sampled rows" in r.output
    scores = json.loads((report / "scores.json").read_text())
    recs = {(x["name"], x.get("subgroup")): x for x in scores["records"]}
    exp = recs[("canary_exposure", None)]
    assert exp["status"] == "ok" and exp["reference"] is not None
    assert 0 <= exp["value"] <= exp["details"]["max_possible"]
    assert recs[("canary_reproduced", "exact")]["details"]["samples"] == 300
    # the re-fit was private too, under the same budget
    assert scores["meta"]["audit"]["dp"]["epsilon_target"] == 4.0
    assert scores["meta"]["audit"]["canaries"] == 3
    # the report's model summary carries the audited model's budget
    assert scores["meta"]["model"]["dp_epsilon"] == dp["epsilon"]
    assert scores["meta"]["model"]["dp_accountant"] == "rdp"
    assert (report / "report.html").is_file()


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        (["--dp-epsilon", "0"], "--dp-epsilon must be a positive number (the privacy budget ε"),
        (["--dp-epsilon", "-2"], "--dp-epsilon must be a positive number"),
        (["--dp-epsilon", "inf"], "--dp-epsilon must be a positive number"),
        (["--dp-epsilon", "8", "--dp-delta", "1"], "--dp-delta must be below 1"),
        (["--dp-epsilon", "8", "--dp-delta", "0"], "--dp-delta must be a positive number"),
        (["--dp-epsilon", "8", "--dp-max-grad-norm", "0"], "--dp-max-grad-norm must be a positive"),
        (
            ["--dp-epsilon", "8", "--dp-accountant", "gdp"],
            "--dp-accountant must be one of rdp, prv",
        ),
        (["--dp-delta", "1e-5"], "--dp-delta goes with --dp-epsilon"),
        (
            ["--generator", "marginals", "--dp-epsilon", "8"],
            "generator 'marginals' cannot train with differential privacy (--dp-epsilon); use "
            "tabular-lm or timeline-lm",
        ),
    ],
)
def test_bad_dp_flags_are_one_sentence_before_anything_is_written(
    pima_csv, tmp_path, flags, message
):
    out = tmp_path / "model"
    assert_user_error(invoke("fit", pima_csv, "-o", out, *flags), message)
    assert not out.exists()


def test_audit_of_a_generator_without_likelihood_measures_reproduction(pima_csv, tmp_path):
    model = tmp_path / "marginals"
    assert invoke("fit", pima_csv, "-o", model, "--generator", "marginals").exit_code == 0
    report = tmp_path / "audit"
    r = invoke(
        "audit", model, "--data", pima_csv, "-o", report, "--canaries", "2",
        "--candidates", "20", "--samples", "200",
    )  # fmt: skip
    assert r.exit_code == 0, r.output
    recs = json.loads((report / "scores.json").read_text())["records"]
    assert [x["status"] for x in recs if x["name"] == "canary_exposure"] == ["not_applicable"]
    assert {x.get("subgroup") for x in recs if x["name"] == "canary_reproduced"} == {
        "exact",
        "near",
    }


def test_bad_audit_input_is_one_sentence(pima_csv, small_model, tmp_path):
    out = tmp_path / "audit"
    r = invoke("audit", small_model, "--data", pima_csv, "-o", out, "--canaries", "0")
    assert_user_error(r, "--canaries must be at least 1; got 0")
    r = invoke("audit", small_model, "--data", pima_csv, "-o", out, "--candidates", "5")
    assert_user_error(r, "--candidates must be at least 10")
    r = invoke("audit", tmp_path / "nope", "--data", pima_csv, "-o", out)
    assert_user_error(r, "nope")
    narrow = tmp_path / "narrow.csv"
    real("MASS/Pima.tr", 50).drop(columns="glu").to_csv(narrow, index=False)
    r = invoke("audit", small_model, "--data", narrow, "-o", out, "--candidates", "20")
    assert_user_error(r, "glu")
    # the report may not overwrite the data it reads
    r = invoke("audit", small_model, "--data", pima_csv, "-o", pima_csv.parent)
    assert r.exit_code == 2, r.output
    assert not out.exists()
