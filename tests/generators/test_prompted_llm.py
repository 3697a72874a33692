"""prompted-llm against a real chat-completions server on 127.0.0.1, on real Pima and colon rows."""

from __future__ import annotations

import json
import warnings

import numpy as np
import pandas as pd
import pytest

from healthsynth.data import infer_schema
from healthsynth.errors import (
    BudgetError,
    EndpointError,
    LLMError,
    ParameterError,
    RemotePHIError,
)
from healthsynth.generators import HealthsynthWarning, load_generator
from healthsynth.generators.prompted_llm import PromptedLLM
from healthsynth.knowledge import Predicate, Rule, RuleSet
from healthsynth.llm import read_audit_log
from healthsynth.llm.testing import ChatServer, Reply, RowReplier
from tests.helpers import real


@pytest.fixture(scope="module")
def pima_all():
    return real("MASS/Pima.tr")


@pytest.fixture(scope="module")
def train(pima_all):
    return pima_all.sample(40, random_state=0).reset_index(drop=True)


@pytest.fixture(scope="module")
def schema(pima_all):
    return infer_schema(pima_all, target="type")


@pytest.fixture
def server(pima_all):
    # the "LLM" knows the whole real table (as a model pretrained on the web may) and writes
    # noisy rows: jittered numbers, 20% flipped outcomes, 5% out-of-domain values
    with ChatServer(RowReplier(pima_all, flip={"type": 0.2}, invalid=0.05)) as s:
        yield s


def make(server, tmp_path, **kw):
    kw.setdefault("audit_log", str(tmp_path / "audit.jsonl"))
    kw.setdefault("timeout", 5.0)
    return PromptedLLM(endpoint=server.url, llm_model="test-model", **kw)


def counted(rec):
    """Rows accounted for by the record's drop counts, plus those kept by curation."""
    return (
        rec["rows_invalid"]
        + rec["off_condition"]
        + rec["rule_violations"]
        + rec["copies_of_examples"]
        + rec["copies_of_training"]
        + rec["curation"]["hard"]
        + rec["rows_kept"]
    )


@pytest.mark.parametrize("prompt", ["cllm", "balanced", "zero-shot"])
def test_each_prompt_gives_valid_rows_and_accounts_for_every_row(
    prompt, server, train, schema, tmp_path
):
    gen = make(server, tmp_path, prompt=prompt, examples=10).fit(train, schema=schema)
    out = gen.sample(60, seed=1)
    assert len(out) == 60 and list(out.columns) == schema.names
    gen.schema_.validate(out)  # the fitted schema: the same columns, with the domains
    rec = gen.sampling_record_
    assert rec["rows_returned"] == 60 and rec["stopped_by"] == "enough rows"
    assert counted(rec) == rec["rows_parsed"] and rec["rows_kept"] >= 60
    cur = rec["curation"]
    assert cur["easy"] + cur["ambiguous"] + cur["unchecked"] == rec["rows_kept"]
    assert rec["rows_invalid"] > 0 and rec["curation"]["hard"] > 0  # the noise was caught
    assert rec["requests"] == rec["generation_requests"] == len(server.requests)
    assert rec["tokens_in"] > 0 and rec["tokens_out"] > 0
    user = server.requests[0]["messages"][1]["content"]
    # the schema's bounds lie beyond the 40 rows (it was inferred from all 200), so they are
    # enforced as declared, but shown rounded outward: no real extreme is stated
    assert rec["domains"]["ped"] == {
        "low": 0.085,
        "high": 2.288,
        "source": "schema",
        "low_source": "schema",
        "high_source": "schema",
    }
    assert "ped: number with 3 decimals from 0.000 to 3.000" in user
    assert "0.085" not in user.split("Here are")[0] and "2.288" not in user.split("Here are")[0]
    if prompt == "zero-shot":
        assert rec["examples_sent"] == 0 and "No real records are shown" in user
    elif prompt == "balanced":
        # the same number of real rows per class, as CSV, and a CSV answer
        assert user.count("Records with type = ") == 2
        assert "npreg,glu,bp,skin,bmi,ped,age,type" in user
        assert "response_format" not in server.requests[0]
    else:
        assert sum(line.startswith('{"npreg"') for line in user.splitlines()) == 10
        assert server.requests[0]["response_format"]["type"] == "json_schema"


def test_zero_shot_sends_no_real_value(server, train, schema, tmp_path):
    gen = make(server, tmp_path, prompt="zero-shot").fit(train, schema=schema)
    gen.sample(20, seed=0)
    sent = json.dumps(server.requests)
    for row in train.head(10).itertuples(index=False):
        assert f'"ped": {row.ped}' not in sent and f"{row.ped},{row.age}" not in sent
    log = read_audit_log(tmp_path / "audit.jsonl")
    assert {r.get("real_rows") for r in log if r["event"] == "sent"} == {0}
    generate = [r for r in log if r.get("purpose") == "generate"]
    assert generate and all(r["schema_columns"] == schema.names for r in generate)
    # what the zero-shot prompt does carry, derived from the real rows, is logged
    assert all(r["derived"]["type"] == "categories" for r in generate)
    assert all(set(r["derived"]) == set(schema.names) for r in generate)


def test_examples_are_real_rows_and_logged(server, train, schema, tmp_path):
    gen = make(server, tmp_path, examples=8).fit(train, schema=schema)
    gen.sample(30, seed=0)
    first = server.requests[0]["messages"][1]["content"]
    shown = [json.loads(x) for x in first.splitlines() if x.startswith('{"npreg"')]
    assert len(shown) == 8
    matched = pd.DataFrame(shown).astype(train.dtypes.to_dict()).merge(train, how="inner")
    assert len(matched) == 8  # every example is a real training row
    sent = [r for r in read_audit_log(tmp_path / "audit.jsonl") if r["event"] == "sent"]
    gen_sent = [r for r in sent if r["purpose"] == "generate"]
    assert gen_sent and all(r["real_rows"] == 8 for r in gen_sent)
    assert gen_sent[0]["columns"] == schema.names
    assert 8 <= gen.sampling_record_["examples_sent"] <= 40
    assert set(gen.sampling_record_["example_rows"]) <= set(range(40))


def test_identifier_columns_are_never_sent(tmp_path):
    colon = real("survival/colon", 300, seed=1)
    schema = infer_schema(colon, target="status", identifiers=["id"])
    pool = colon.drop(columns=["id"])
    with ChatServer(RowReplier(pool)) as server:
        gen = make(server, tmp_path, examples=5, rows_per_request=5).fit(colon, schema=schema)
        out = gen.sample(15, seed=0)
        sent = json.dumps(server.requests)
    assert '"id"' not in sent and "- id:" not in sent
    assert list(out["id"]) == list(range(1, 16))  # surrogate identifiers
    schema.validate(out)


def test_same_seed_same_rows_and_round_trip(server, train, schema, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # a loaded model logs to ./healthsynth-llm-audit.jsonl
    gen = make(server, tmp_path).fit(train, schema=schema)
    a = gen.sample(25, seed=4)
    pd.testing.assert_frame_equal(a, gen.sample(25, seed=4))
    assert not a.equals(gen.sample(25, seed=5))
    gen.save(tmp_path / "m")
    assert (tmp_path / "m" / "model" / "real.parquet").exists()
    back = load_generator(tmp_path / "m")
    pd.testing.assert_frame_equal(back.sample(25, seed=4), a)
    assert "test-model" in (tmp_path / "m" / "generator.json").read_text()


def test_conditions_go_into_the_prompt_and_schema(server, train, schema, tmp_path):
    gen = make(server, tmp_path).fit(train, schema=schema)
    out = gen.sample(20, conditions={"type": "Yes", "age": "40..63"}, seed=0)
    assert (out["type"] == "Yes").all() and out["age"].between(40, 63).all()
    req = server.requests[-1]
    assert (
        "Every record must satisfy: type is Yes; age is between 40 and 63."
        in req["messages"][1]["content"]
    )
    props = req["response_format"]["json_schema"]["schema"]["properties"]["rows"]["items"]
    assert props["properties"]["type"] == {"enum": ["Yes"]}
    assert props["properties"]["age"]["minimum"] == 40
    # examples come from the subgroup when the data have it
    shown = [json.loads(x) for x in req["messages"][1]["content"].splitlines() if x.startswith("{")]
    assert shown and all(r["type"] == "Yes" and r["age"] >= 40 for r in shown)


def test_rows_off_the_conditions_are_dropped_and_counted(pima_all, train, schema, tmp_path):
    # a server that ignores the JSON schema (text mode) and the words: off-condition rows appear
    with ChatServer(RowReplier(pima_all)) as server:
        gen = make(server, tmp_path, response_format="text").fit(train, schema=schema)
        out = gen.sample(20, conditions={"type": "Yes"}, seed=0)
    assert (out["type"] == "Yes").all()
    assert gen.sampling_record_["off_condition"] > 0


def test_malformed_json_gets_one_repair(server, train, schema, tmp_path):
    gen = make(server, tmp_path, concurrency=1).fit(train, schema=schema)
    server.script.append(Reply(content="Sure! Here are your rows: {rows: [oops"))
    gen.sample(10, seed=0)
    rec = gen.sampling_record_
    assert (rec["malformed_replies"], rec["repairs_tried"], rec["repairs_ok"]) == (1, 1, 1)
    repair = next(r for r in server.requests if len(r["messages"]) == 4)
    assert repair["messages"][-2] == {
        "role": "assistant",
        "content": "Sure! Here are your rows: {rows: [oops",
    }
    assert "could not be read" in repair["messages"][-1]["content"]
    log = read_audit_log(tmp_path / "audit.jsonl")
    purposes = [r["purpose"] for r in log if r["event"] == "sent"]
    assert purposes[0] == "list-models" and purposes.count("repair") == 1


def test_a_failed_repair_drops_the_reply_without_crashing(server, train, schema, tmp_path):
    gen = make(server, tmp_path, concurrency=1).fit(train, schema=schema)
    # two generation requests per round: the first is unreadable, so is its repair
    server.script.extend(
        [Reply(content="not json at all"), Reply(), Reply(content="still not json")]
    )
    out = gen.sample(10, seed=0)
    rec = gen.sampling_record_
    assert len(out) == 10 and rec["repairs_tried"] == 1 and rec["repairs_ok"] == 0


def test_truncated_reply_keeps_its_complete_rows(server, train, schema, tmp_path):
    gen = make(server, tmp_path, concurrency=1, curate=False).fit(train, schema=schema)
    server.script.append(Reply(truncate=0.55))
    gen.sample(5, seed=0)
    rec = gen.sampling_record_
    assert rec["truncated_replies"] == 1 and rec["repairs_tried"] == 0
    # every reply holds 10 rows but the truncated one, cut near its middle (4 to 6 rows kept)
    whole = 10 * (rec["generation_requests"] - 1)
    assert whole + 4 <= rec["rows_parsed"] <= whole + 6


def test_schema_violating_rows_never_come_out(pima_all, train, schema, tmp_path):
    with ChatServer(RowReplier(pima_all, invalid=0.5, jitter=0.3)) as server:
        gen = make(server, tmp_path, curate=False).fit(train, schema=schema)
        out = gen.sample(40, seed=0)
    gen.schema_.validate(out)
    reasons = gen.sampling_record_["invalid_reasons"]
    assert any("not a category" in k for k in reasons) and any("domain" in k for k in reasons)
    assert gen.sampling_record_["rows_out_of_domain"] == sum(
        v for k, v in reasons.items() if k.endswith("out of domain")
    )


def test_copies_of_real_rows_are_dropped(pima_all, train, schema, tmp_path):
    # a server that recites real rows verbatim
    with ChatServer(RowReplier(pima_all, jitter=0.0)) as server:
        gen = make(server, tmp_path, curate=False).fit(train, schema=schema)
        out = gen.sample(30, seed=0)
    rec = gen.sampling_record_
    assert rec["copies_of_examples"] > 0
    assert rec["copies_of_examples"] + rec["copies_of_training"] > 0
    merged = out.merge(train.drop_duplicates(), how="inner", on=schema.names)
    assert len(merged) == 0


def test_rules_are_enforced(server, train, schema, tmp_path):
    # an always-applying range rule is the column's domain; a conditional rule is checked
    rules = RuleSet(
        [
            Rule(name="bmi_cap", when=(), then=Predicate(column="bmi", maximum=35)),
            Rule(
                name="diabetic_glucose",
                when=(Predicate(column="type", values=("Yes",)),),
                then=Predicate(column="glu", minimum=120),
            ),
        ]
    )
    gen = make(server, tmp_path).fit(train, schema=schema, rules=rules)
    out = gen.sample(30, seed=0)
    assert gen.domains_["bmi"].high == 35 and gen.domains_["bmi"].high_source == "rules"
    props = server.requests[-1]["response_format"]["json_schema"]["schema"]["properties"]
    assert props["rows"]["items"]["properties"]["bmi"]["maximum"] == 35
    assert (out["bmi"] <= 35).all()
    assert (out.loc[out["type"] == "Yes", "glu"] >= 120).all()
    assert gen.sampling_record_["rule_violations"] > 0


def test_budget_runs_out_mid_sample(server, train, schema, tmp_path):
    gen = make(server, tmp_path, budget_tokens=6000, concurrency=1).fit(train, schema=schema)
    with pytest.warns(HealthsynthWarning, match=r"returned \d+ of the 500 rows asked for"):
        out = gen.sample(500, seed=0)
    rec = gen.sampling_record_
    assert 0 < len(out) < 500 and rec["stopped_by"] == "budget"
    assert rec["tokens_in"] + rec["tokens_out"] <= 6000


def test_budget_smaller_than_one_request(server, train, schema, tmp_path):
    with pytest.raises(BudgetError, match="smaller than one request"):
        make(server, tmp_path, budget_tokens=50).fit(train, schema=schema)
    assert server.requests == []


def test_examples_larger_than_the_data(server, train, schema, tmp_path):
    with pytest.raises(ParameterError, match=r"examples \(50\) is more than the 40 rows"):
        make(server, tmp_path, examples=50).fit(train, schema=schema)
    # zero-shot shows no examples, so the number does not matter
    make(server, tmp_path, examples=50, prompt="zero-shot").fit(train, schema=schema)


def test_remote_endpoint_needs_permission(train, schema, tmp_path):
    gen = PromptedLLM(
        endpoint="https://llm.example.org/v1", llm_model="m", audit_log=str(tmp_path / "a.jsonl")
    )
    with pytest.raises(RemotePHIError, match="llm.example.org, which is not this machine"):
        gen.fit(train, schema=schema)
    assert not (tmp_path / "a.jsonl").exists()
    # zero-shot sends no real row, but the categories and ranges computed from them
    zero = PromptedLLM(endpoint="https://llm.example.org/v1", llm_model="m", prompt="zero-shot")
    with pytest.raises(RemotePHIError, match="data derived from the real rows.* 8 columns"):
        zero.fit(train, schema=schema)
    # with permission, both may go (no request made here)
    for kw in ({"prompt": "zero-shot"}, {}):
        PromptedLLM(
            endpoint="https://llm.example.org/v1",
            llm_model="m",
            check_model=False,
            allow_remote_phi=True,
            **kw,
        ).fit(train, schema=schema)


def test_endpoint_problems_at_fit(server, train, schema, tmp_path):
    with pytest.raises(EndpointError, match="does not serve the model 'nope'"):
        PromptedLLM(endpoint=server.url, llm_model="nope", audit_log=str(tmp_path / "a")).fit(
            train, schema=schema
        )
    with pytest.raises(ParameterError, match="needs the LLM endpoint"):
        PromptedLLM(llm_model="m").fit(train, schema=schema)
    with pytest.raises(ParameterError, match="prompt must be one of cllm, balanced, zero-shot"):
        make(server, tmp_path, prompt="few").fit(train, schema=schema)
    with pytest.raises(ParameterError, match="balanced prompt needs a categorical target"):
        make(server, tmp_path, prompt="balanced").fit(train, schema=infer_schema(train))


def test_replies_without_usable_rows_end_with_a_clear_error(train, schema, tmp_path):
    with ChatServer(lambda body: "I cannot help with that.") as server:
        gen = make(server, tmp_path, concurrency=1, response_format="text").fit(
            train, schema=schema
        )
        with pytest.raises(LLMError, match="held no usable row in 3 rounds"):
            gen.sample(10, seed=0)


def test_server_errors_mid_sample_stop_the_run(server, train, schema, tmp_path):
    gen = make(server, tmp_path, max_retries=0, concurrency=1).fit(train, schema=schema)
    server.script.append(Reply(status=500, message="boom"))
    with pytest.raises(EndpointError, match="answered 500: boom"):
        gen.sample(10, seed=0)


def test_the_cache_makes_a_rerun_free(server, train, schema, tmp_path):
    gen = make(server, tmp_path, cache_dir=str(tmp_path / "cache")).fit(train, schema=schema)
    a = gen.sample(20, seed=3)
    n = len(server.requests)
    b = gen.sample(20, seed=3)
    pd.testing.assert_frame_equal(a, b)
    assert len(server.requests) == n and gen.sampling_record_["requests"] == 0
    assert gen.sampling_record_["cached_requests"] > 0


def test_curation_can_be_off_and_says_so(server, train, schema, tmp_path):
    gen = make(server, tmp_path, curate=False).fit(train, schema=schema)
    gen.sample(10, seed=0)
    rec = gen.sampling_record_
    assert rec["curation"]["skipped"] == "curate=False" and counted(rec) == rec["rows_parsed"]
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        out = make(server, tmp_path).fit(train, schema=infer_schema(train)).sample(10, seed=0)
    assert len(out) == 10  # no target: curation skipped, quietly recorded
    assert np.isfinite(out["glu"]).all()


def test_balanced_needs_an_example_per_class(server, train, schema, tmp_path):
    with pytest.raises(ParameterError, match="at least one real row per value of 'type'"):
        make(server, tmp_path, prompt="balanced", examples=1).fit(train, schema=schema)


def test_sample_to_file_is_one_run_under_one_budget(server, train, schema, tmp_path):
    gen = make(server, tmp_path, budget_tokens=8000, concurrency=1).fit(train, schema=schema)
    with pytest.warns(HealthsynthWarning, match="of the 60 rows asked for"):
        gen.sample_to_file(60, tmp_path / "s.csv", seed=0, block_size=20)
    rec = gen.sampling_record_
    log = read_audit_log(tmp_path / "audit.jsonl")
    spent = sum(r.get("tokens_in", 0) + r.get("tokens_out", 0) for r in log if r["event"] == "done")
    assert spent == rec["tokens_in"] + rec["tokens_out"] <= 8000
    assert len(pd.read_csv(tmp_path / "s.csv")) == rec["rows_returned"]


def test_examples_sent_are_the_logged_rows(server, train, schema, tmp_path):
    gen = make(server, tmp_path, examples=5).fit(train, schema=schema)
    gen.sample(10, seed=0)
    sent = gen.examples_sent()
    assert len(sent) == gen.sampling_record_["examples_sent"] and list(sent.columns) == schema.names
    assert len(sent.merge(train, how="inner")) == len(sent)
    with pytest.raises(ParameterError, match="do not index this model's real rows"):
        gen.examples_sent({"example_rows": [999]})


def test_csv_replies_hold_the_rows_asked_for(server, train, schema, tmp_path):
    gen = make(server, tmp_path, prompt="balanced", rows_per_request=4, curate=False)
    gen.fit(train, schema=schema).sample(8, seed=0)
    rec = gen.sampling_record_
    assert rec["rows_parsed"] == 4 * rec["generation_requests"]
    user = server.requests[0]["messages"][1]["content"]
    assert "Write 4 new records" in user and user.count(",".join(schema.names)) == 3
