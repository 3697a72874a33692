"""The command line for prompted generation, against a real chat server on 127.0.0.1."""

from __future__ import annotations

import json
import socket

import pandas as pd
import pytest

from healthsynth.llm import read_audit_log
from healthsynth.llm.testing import ChatServer, Reply, RowReplier
from tests.helpers import real
from tests.test_cli import assert_user_error, invoke


@pytest.fixture(scope="module")
def pima():
    return real("MASS/Pima.tr")


@pytest.fixture
def data(pima, tmp_path):
    path = tmp_path / "pima40.csv"
    pima.sample(40, random_state=1).to_csv(path, index=False)
    return path


@pytest.fixture
def server(pima):
    with ChatServer(RowReplier(pima, flip={"type": 0.2}, invalid=0.05), api_key="sk-cli") as s:
        yield s


@pytest.fixture(autouse=True)
def _key_and_cwd(monkeypatch, tmp_path):
    monkeypatch.setenv("OPENAI_API_KEY", "sk-cli")
    monkeypatch.chdir(tmp_path)  # the default audit log goes to the working folder


def fit(data, server, out, *extra):
    return invoke(
        "fit", data, "--generator", "prompted-llm", "--endpoint", server.url,
        "--llm-model", "test-model", "--target", "type", "--out", out, *extra,
    )  # fmt: skip


def test_fit_sample_evaluate(data, server, tmp_path):
    r = fit(
        data, server, tmp_path / "m", "--examples", "10", "--prompt", "cllm",
        "--budget-tokens", "200000", "--describe", "glu=plasma glucose, mg/dL",
        "--description", "Pima women tested for diabetes",
    )  # fmt: skip
    assert r.exit_code == 0, r.output
    assert "LLM requests are logged to" in r.output
    saved = json.loads((tmp_path / "m" / "generator.json").read_text())["params"]
    assert saved["examples"] == 10 and saved["budget_tokens"] == 200000
    assert saved["column_descriptions"] == {"glu": "plasma glucose, mg/dL"}
    assert "sk-cli" not in (tmp_path / "m" / "generator.json").read_text()
    r = invoke("sample", tmp_path / "m", "-n", "50", "-o", tmp_path / "s.csv", "--seed", "1",
               "--condition", "type=Yes")  # fmt: skip
    assert r.exit_code == 0, r.output
    text = " ".join(r.output.split())
    assert "wrote 50 rows" in text and "dropped by curation" in text
    out = pd.read_csv(tmp_path / "s.csv")
    assert len(out) == 50 and (out["type"] == "Yes").all()
    run = json.loads((tmp_path / "s.csv.run.json").read_text())
    assert run["requests"] > 0 and run["tokens_in"] > 0 and run["llm"]["rows_returned"] == 50
    prompt = server.requests[-1]["messages"][1]["content"]
    assert "Pima women tested for diabetes" in prompt and "glu: plasma glucose, mg/dL" in prompt
    log = read_audit_log(tmp_path / "healthsynth-llm-audit.jsonl")
    assert {r["event"] for r in log} >= {"sent", "done"}
    assert "sk-cli" not in (tmp_path / "healthsynth-llm-audit.jsonl").read_text()
    r = invoke("evaluate", "--real", data, "--synthetic", tmp_path / "s.csv",
               "--model", tmp_path / "m", "--out", tmp_path / "rep",
               "--metrics", "regurgitation,cost")  # fmt: skip
    assert r.exit_code == 0, r.output
    scores = json.loads((tmp_path / "rep" / "scores.json").read_text())
    names = {rec["name"] for rec in scores["records"]}
    assert {"exact_copy_share", "example_exact_copy_share", "sample_llm_requests"} <= names
    html = (tmp_path / "rep" / "report.html").read_text()
    assert "sample_llm_requests" in html


def test_unreachable_endpoint(data, tmp_path):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    r = invoke("fit", data, "--generator", "prompted-llm", "--endpoint",
               f"http://127.0.0.1:{port}/v1", "--llm-model", "m", "--timeout", "2",
               "--out", tmp_path / "m")  # fmt: skip
    assert_user_error(r, "could not connect to the LLM endpoint", "check --endpoint")
    assert not (tmp_path / "m").exists()


def test_wrong_api_key(data, server, tmp_path, monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", "sk-WRONG-99")
    r = fit(data, server, tmp_path / "m")
    assert_user_error(r, "refused the API key (401 Unauthorized)", "OPENAI_API_KEY")
    assert "sk-WRONG-99" not in r.output
    assert not (tmp_path / "m").exists()


def test_model_the_server_rejects(data, server, tmp_path):
    r = invoke("fit", data, "--generator", "prompted-llm", "--endpoint", server.url,
               "--llm-model", "gpt-9", "--out", tmp_path / "m")  # fmt: skip
    assert_user_error(r, "does not serve the model 'gpt-9'", "it serves: test-model")


def test_budget_smaller_than_one_request(data, server, tmp_path):
    r = fit(data, server, tmp_path / "m", "--budget-tokens", "100")
    assert_user_error(r, "token budget (100) is smaller than one request", "raise --budget-tokens")
    assert server.requests == []


def test_examples_larger_than_the_data(data, server, tmp_path):
    r = fit(data, server, tmp_path / "m", "--examples", "41")
    assert_user_error(r, "examples (41) is more than the 40 rows", "--examples 40 or fewer")


def test_remote_endpoint_without_permission(data, tmp_path):
    r = invoke("fit", data, "--generator", "prompted-llm",
               "--endpoint", "https://api.openai.com/v1", "--llm-model", "gpt-4o",
               "--out", tmp_path / "m")  # fmt: skip
    assert_user_error(r, "api.openai.com, which is not this machine", "--allow-remote-phi")
    assert not (tmp_path / "healthsynth-llm-audit.jsonl").exists()


def test_llm_flags_on_another_generator(data, tmp_path):
    r = invoke("fit", data, "--generator", "marginals", "--endpoint", "http://127.0.0.1:1/v1",
               "--out", tmp_path / "m")  # fmt: skip
    assert_user_error(r, "generator 'marginals' does not take --endpoint")
    r = fit(data, type("S", (), {"url": "http://127.0.0.1:1/v1"}), tmp_path / "m",
            "--describe", "glu")  # fmt: skip
    assert_user_error(r, "--describe 'glu' is not of the form COLUMN=MEANING")
    r = fit(data, type("S", (), {"url": "http://127.0.0.1:1/v1"}), tmp_path / "m",
            "--prompt", "few-shot")  # fmt: skip
    assert_user_error(r, "prompt must be one of cllm, balanced, zero-shot")


def test_identifier_column_fit_sample_evaluate(pima, server, tmp_path):
    df = pima.sample(40, random_state=2).reset_index(drop=True)
    df.insert(0, "patient_id", [f"P{i:04d}" for i in range(len(df))])
    df.to_csv(tmp_path / "ids.csv", index=False)
    r = fit(tmp_path / "ids.csv", server, tmp_path / "m", "--id", "patient_id", "--examples", "8")
    assert r.exit_code == 0, r.output
    r = invoke("sample", tmp_path / "m", "-n", "20", "-o", tmp_path / "s.csv", "--seed", "0",
               "--budget-tokens", "100000")  # fmt: skip
    assert r.exit_code == 0, r.output
    assert "patient_id" not in json.dumps(server.requests) and "P0001" not in json.dumps(
        server.requests
    )
    r = invoke("evaluate", "--real", tmp_path / "ids.csv", "--synthetic", tmp_path / "s.csv",
               "--model", tmp_path / "m", "--out", tmp_path / "rep",
               "--metrics", "regurgitation")  # fmt: skip
    assert r.exit_code == 0, r.output
    scores = json.loads((tmp_path / "rep" / "scores.json").read_text())
    shares = {x["name"] for x in scores["records"] if x["value"] is not None}
    assert "example_exact_copy_share" in shares


def test_sample_budget_flags(data, server, tmp_path):
    assert fit(data, server, tmp_path / "m").exit_code == 0
    r = invoke("sample", tmp_path / "m", "-n", "5000", "-o", tmp_path / "s.csv",
               "--budget-tokens", "5000")  # fmt: skip
    assert r.exit_code == 0, r.output
    assert "rows asked for" in " ".join(r.output.split())  # the budget warning
    run = json.loads((tmp_path / "s.csv.run.json").read_text())
    assert run["tokens_in"] + run["tokens_out"] <= 5000 and run["llm"]["stopped_by"] == "budget"
    r = invoke("sample", tmp_path / "m", "-n", "5", "-o", tmp_path / "t.csv",
               "--budget-tokens", "0")  # fmt: skip
    assert_user_error(r, "budget_tokens must be a whole number >= 1")
    invoke("fit", data, "--generator", "marginals", "--out", tmp_path / "marg")
    r = invoke("sample", tmp_path / "marg", "-n", "5", "-o", tmp_path / "u.csv",
               "--budget-tokens", "10")  # fmt: skip
    assert_user_error(r, "--budget-tokens applies to prompted-llm models")


def test_benchmark_config_compares_prompted_llm_with_a_baseline(server, tmp_path):
    """The benchmark runs prompted-llm beside other generators on the same data and seeds."""
    log = tmp_path / "bench-audit.jsonl"
    (tmp_path / "cfg.yaml").write_text(
        "name: llm\nexperiment: generators\n"
        "datasets:\n  - {name: pima, source: MASS/Pima.tr, target: type}\n"
        "generators:\n  - marginals\n"
        f"  - {{name: llm, generator: prompted-llm, params: {{endpoint: '{server.url}', "
        f"llm_model: test-model, examples: 10, audit_log: '{log}'}}}}\n"
        "train_sizes: [40]\nseeds: [0]\nmetrics: [column_distance, tstr]\n",
        encoding="utf-8",
    )
    r = invoke("benchmark", tmp_path / "cfg.yaml", "-o", tmp_path / "out")
    assert r.exit_code == 0, r.output
    text = " ".join(r.output.split())
    assert "pima · llm · n=40 · seed 0: ok" in text and "2 run (2 ok)" in text
    board = (tmp_path / "out" / "leaderboard.md").read_text()
    assert "| llm |" in board and "| marginals |" in board
    assert any(r.get("purpose") == "generate" for r in read_audit_log(log))


# -- the PHI gate at the command line (issue 20, item 4) ----------------------------------------
def test_sample_takes_where_data_go_from_the_command_only(data, server, tmp_path, monkeypatch):
    assert fit(data, server, tmp_path / "m", "--examples", "10").exit_code == 0
    monkeypatch.setenv("HS_SECRET", "hunter2-secret-value")
    meta_path = tmp_path / "m" / "generator.json"
    meta = json.loads(meta_path.read_text())
    meta["params"].update(
        endpoint="https://llm.example.org/v1",
        allow_remote_phi=True,
        api_key_env="HS_SECRET",
        audit_log=str(tmp_path / "elsewhere" / "log.jsonl"),
        cache_dir=str(tmp_path / "elsewhere" / "cache"),
    )
    meta_path.write_text(json.dumps(meta))
    before = len(server.seen)
    r = invoke("sample", tmp_path / "m", "-n", "5", "-o", tmp_path / "s.csv")
    assert_user_error(r, "fitted against https://llm.example.org/v1", "--endpoint URL")
    assert len(server.seen) == before and not (tmp_path / "s.csv").exists()
    # given again on the command, the (local) endpoint is used with the safe defaults
    r = invoke("sample", tmp_path / "m", "-n", "5", "-o", tmp_path / "s.csv",
               "--endpoint", server.url)  # fmt: skip
    assert r.exit_code == 0, r.output
    sent = [h for _, _, h in server.seen[before:]]
    assert sent and all(h.get("authorization") == "Bearer sk-cli" for h in sent)
    assert not (tmp_path / "elsewhere").exists()
    assert read_audit_log(tmp_path / "healthsynth-llm-audit.jsonl")
    run = json.loads((tmp_path / "s.csv.run.json").read_text())
    assert run["llm"]["endpoint"] == server.url and run["llm"]["allow_remote_phi"] is False


def test_sample_gate_flags(data, server, tmp_path, monkeypatch):
    assert fit(data, server, tmp_path / "m", "--examples", "10").exit_code == 0
    monkeypatch.setenv("OPENAI_API_KEY", "sk-WRONG")
    monkeypatch.setenv("HS_KEY", "sk-cli")
    r = invoke("sample", tmp_path / "m", "-n", "5", "-o", tmp_path / "s.csv",
               "--api-key-env", "HS_KEY", "--audit-log", tmp_path / "logs" / "a.jsonl",
               "--cache-dir", tmp_path / "cache")  # fmt: skip
    assert r.exit_code == 0, r.output
    assert read_audit_log(tmp_path / "logs" / "a.jsonl") and list((tmp_path / "cache").rglob("*"))
    r = invoke("sample", tmp_path / "m", "-n", "5", "-o", tmp_path / "t.csv",
               "--endpoint", "https://llm.example.org/v1")  # fmt: skip
    assert_user_error(r, "llm.example.org, which is not this machine", "--allow-remote-phi")
    r = invoke("sample", tmp_path / "m", "-n", "5", "-o", tmp_path / "t.csv",
               "--endpoint", "https://user:s3cret@llm.example.org/v1")  # fmt: skip
    assert_user_error(r, "carries credentials", "--api-key-env")
    assert "s3cret" not in r.output
    invoke("fit", data, "--generator", "marginals", "--out", tmp_path / "marg")
    for flag in (["--endpoint", server.url], ["--allow-remote-phi"], ["--audit-log", "x.jsonl"]):
        r = invoke("sample", tmp_path / "marg", "-n", "5", "-o", tmp_path / "u.csv", *flag)
        assert_user_error(r, f"{flag[0]} applies to prompted-llm models")


def test_a_redirect_at_sampling_time_is_refused(data, server, tmp_path):
    assert fit(data, server, tmp_path / "m", "--examples", "10").exit_code == 0
    with ChatServer(RowReplier(real("MASS/Pima.tr")), host="127.0.0.2") as other:
        server.script.extend(
            [Reply(status=307, headers={"Location": other.url + "/chat/completions"})] * 16
        )
        r = invoke("sample", tmp_path / "m", "-n", "5", "-o", tmp_path / "s.csv")
        assert_user_error(r, "answered 307 and redirected the request to http://127.0.0.2")
        assert other.seen == [] and not (tmp_path / "s.csv").exists()


def test_zero_shot_to_a_remote_endpoint_needs_the_flag(data, tmp_path):
    r = invoke("fit", data, "--generator", "prompted-llm", "--prompt", "zero-shot",
               "--endpoint", "https://api.openai.com/v1", "--llm-model", "gpt-4o",
               "--out", tmp_path / "m")  # fmt: skip
    assert_user_error(r, "data derived from the real rows", "--allow-remote-phi")
    assert not (tmp_path / "healthsynth-llm-audit.jsonl").exists()


def test_domain_flags(data, server, tmp_path):
    r = fit(data, server, tmp_path / "m", "--range", "bmi=15..60", "--range", "age=21..",
            "--widen", "2", "--reveal-ranges", "--code-map", "pbcseq")  # fmt: skip
    assert r.exit_code == 0, r.output
    domains = json.loads((tmp_path / "m" / "training.json").read_text())["domains"]
    assert (domains["bmi"]["low"], domains["bmi"]["high"], domains["bmi"]["source"]) == (
        15,
        60,
        "given",
    )
    assert domains["age"]["low_source"] == "given" and domains["age"]["high_source"] == "widened"
    r = invoke("sample", tmp_path / "m", "-n", "10", "-o", tmp_path / "s.csv")
    assert r.exit_code == 0, r.output
    assert "in the real records)" in server.requests[-1]["messages"][1]["content"]
    assert "outside a column's domain" in " ".join(r.output.split())
    assert pd.read_csv(tmp_path / "s.csv")["bmi"].between(15, 60).all()
    for bad, message in (
        (["--range", "bmi"], "--range 'bmi' is not of the form COLUMN=LOW..HIGH"),
        (["--range", "bmi=.."], "is not of the form COLUMN=LOW..HIGH"),
        (["--range", "type=0..1"], "domains (--range) names 'type', which is not a numeric"),
        (["--widen", "-1"], "widen must be a number from 0 to 100"),
    ):
        r = fit(data, server, tmp_path / "bad", *bad)
        assert_user_error(r, message)
    r = invoke("fit", data, "--generator", "marginals", "--widen", "2", "--out", tmp_path / "x")
    assert_user_error(r, "generator 'marginals' does not take --widen")
    r = invoke(
        "fit", data, "--generator", "marginals", "--range", "bmi=1..2", "--out", tmp_path / "x"
    )
    assert_user_error(r, "generator 'marginals' does not take --range")
