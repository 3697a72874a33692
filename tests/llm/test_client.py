"""The chat client against a real HTTP server on 127.0.0.1 (the SDK and sockets run for real)."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import textwrap
import time

import pytest

from healthsynth.errors import BudgetError, EndpointError, ParameterError, RemotePHIError
from healthsynth.llm import ChatClient, ChatRequest, is_local_endpoint, load_prices, read_audit_log
from healthsynth.llm.testing import ChatServer, Reply, RowReplier
from tests.helpers import real

SCHEMA_3 = {
    "type": "object",
    "properties": {"rows": {"type": "array", "minItems": 3, "maxItems": 3}},
}


def ask(text: str = "Write 3 rows as JSON.", *, real_rows: int = 0, seed: int = 1, **kw):
    return ChatRequest(
        messages=[{"role": "user", "content": text}],
        max_tokens=kw.pop("max_tokens", 400),
        seed=seed,
        json_schema=kw.pop("json_schema", SCHEMA_3),
        real_rows=real_rows,
        columns=["glu", "type"] if real_rows else [],
        **kw,
    )


@pytest.fixture
def server():
    with ChatServer(RowReplier(real("MASS/Pima.tr"))) as s:
        yield s


_OPEN: list[ChatClient] = []


@pytest.fixture(autouse=True)
def _close_clients():
    """Close every client a test made: an open connection left to the garbage collector
    surfaces later as a ResourceWarning in another test's output."""
    yield
    while _OPEN:
        _OPEN.pop().close()


def client(server, tmp_path, **kw):
    kw.setdefault("audit_log", tmp_path / "audit.jsonl")
    kw.setdefault("timeout", 5.0)
    c = ChatClient(endpoint=server.url, model="test-model", **kw)
    _OPEN.append(c)
    return c


def test_reply_usage_and_audit_log(server, tmp_path):
    c = client(server, tmp_path)
    reply = c.complete(ask(real_rows=2))
    rows = json.loads(reply.text)["rows"]
    assert len(rows) == 3 and set(rows[0]) >= {"glu", "type"}
    assert reply.tokens_in > 0 and reply.tokens_out > 0 and reply.usage_reported
    u = c.usage.to_record()
    assert (u["requests"], u["tokens_in"], u["tokens_out"]) == (
        1,
        reply.tokens_in,
        reply.tokens_out,
    )
    assert u["cost_usd"] is None  # no price known
    log = read_audit_log(tmp_path / "audit.jsonl")
    assert [r["event"] for r in log] == ["sent", "done"]
    sent, done = log
    assert sent["id"] == done["id"]
    assert sent["endpoint"] == server.url and sent["model"] == "test-model"
    assert sent["real_rows"] == 2 and sent["columns"] == ["glu", "type"]
    assert len(sent["prompt_sha256"]) == 64 and "Write 3 rows" not in json.dumps(log)
    assert (done["tokens_in"], done["tokens_out"]) == (reply.tokens_in, reply.tokens_out)
    # the schema went to the server as a JSON-schema response format, with the seed
    body = server.requests[-1]
    assert body["response_format"]["type"] == "json_schema" and body["seed"] == 1


def test_response_formats(server, tmp_path):
    client(server, tmp_path, response_format="json_object").complete(ask())
    assert server.requests[-1]["response_format"] == {"type": "json_object"}
    client(server, tmp_path, response_format="text", send_seed=False).complete(ask())
    assert "response_format" not in server.requests[-1] and "seed" not in server.requests[-1]
    with pytest.raises(ParameterError, match="response_format must be one of"):
        client(server, tmp_path, response_format="xml")


def test_429_with_retry_after_is_retried(server, tmp_path):
    server.script.append(Reply(status=429, headers={"Retry-After": "1"}))
    c = client(server, tmp_path)
    start = time.perf_counter()
    reply = c.complete(ask())
    assert time.perf_counter() - start >= 0.9  # waited as told
    assert json.loads(reply.text)["rows"]
    assert c.usage.statuses == {"429": 1, "200": 1}
    assert c.usage.requests == 1 and c.usage.http_attempts == 2


def test_500_is_retried_then_reported(server, tmp_path):
    server.script.append(Reply(status=500))
    c = client(server, tmp_path, max_retries=1)
    assert json.loads(c.complete(ask()).text)["rows"]
    server.script.extend([Reply(status=503, message="overloaded")] * 2)
    with pytest.raises(EndpointError, match=r"answered 503: overloaded after 2 attempts"):
        c.complete(ask(seed=2))
    assert c.usage.failed_requests == 1
    log = read_audit_log(tmp_path / "audit.jsonl")
    assert log[-1]["event"] == "failed" and "503" in log[-1]["error"]


def test_slow_reply_times_out_without_hanging(server, tmp_path):
    server.script.extend([Reply(delay=3)] * 2)
    c = client(server, tmp_path, timeout=0.5, max_retries=1)
    start = time.perf_counter()
    with pytest.raises(EndpointError, match=r"did not answer within 0.5 s \(2 attempts\)"):
        c.complete(ask())
    assert time.perf_counter() - start < 3.0


def test_slow_first_attempt_then_success(server, tmp_path):
    server.script.append(Reply(delay=2))
    c = client(server, tmp_path, timeout=0.5, max_retries=2)
    assert json.loads(c.complete(ask()).text)["rows"]


def test_unreachable_endpoint(tmp_path):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # nothing listens here once the socket closes
    c = ChatClient(
        endpoint=f"http://127.0.0.1:{port}/v1",
        model="m",
        max_retries=1,
        timeout=2,
        audit_log=tmp_path / "a.jsonl",
    )
    start = time.perf_counter()
    with pytest.raises(EndpointError, match="could not connect to the LLM endpoint"):
        c.check_model()
    with pytest.raises(EndpointError, match="could not connect"):
        c.complete(ask())
    assert time.perf_counter() - start < 10


def test_wrong_or_missing_api_key_never_shown(tmp_path, monkeypatch):
    secret = "sk-test-WRONG-1234567890"
    with ChatServer(RowReplier(real("MASS/Pima.tr")), api_key="sk-right") as server:
        monkeypatch.setenv("HS_TEST_KEY", secret)
        c = client(server, tmp_path, api_key_env="HS_TEST_KEY")
        with pytest.raises(EndpointError) as e:
            c.complete(ask())
        msg = str(e.value)
        assert "refused the API key (401 Unauthorized)" in msg and "HS_TEST_KEY" in msg
        with pytest.raises(EndpointError, match="401"):
            c.check_model()
        monkeypatch.delenv("HS_TEST_KEY")
        c2 = client(server, tmp_path, api_key_env="HS_TEST_KEY")
        with pytest.raises(EndpointError, match="the variable HS_TEST_KEY is not set"):
            c2.complete(ask())
        monkeypatch.setenv("HS_TEST_KEY", "sk-right")
        assert client(server, tmp_path, api_key_env="HS_TEST_KEY").complete(ask()).text
    text = (tmp_path / "audit.jsonl").read_text()
    assert secret not in text and "sk-right" not in text and secret not in repr(c)


def test_error_body_echoing_the_key_is_scrubbed(tmp_path, monkeypatch):
    secret = "sk-live-ABCDEF0123456789"
    monkeypatch.setenv("HS_TEST_KEY", secret)
    with ChatServer(RowReplier(real("MASS/Pima.tr"))) as server:
        server.script.append(Reply(status=400, message=f"bad request from key {secret}"))
        c = client(server, tmp_path, api_key_env="HS_TEST_KEY")
        with pytest.raises(EndpointError) as e:
            c.complete(ask())
    assert secret not in str(e.value) and "***" in str(e.value)
    assert "--response-format" in str(e.value)


def test_model_the_server_rejects(server, tmp_path):
    c = ChatClient(endpoint=server.url, model="gpt-nope", audit_log=tmp_path / "a.jsonl")
    _OPEN.append(c)
    with pytest.raises(
        EndpointError, match="does not serve the model 'gpt-nope'; it serves: test-model"
    ):
        c.check_model()
    with pytest.raises(EndpointError, match="404 Not Found for model 'gpt-nope'"):
        c.complete(ask())


def test_budget_smaller_than_one_request(server, tmp_path):
    c = client(server, tmp_path, budget_tokens=100)
    with pytest.raises(BudgetError, match=r"token budget \(100\) is smaller than one request"):
        c.check_budget_for(ask(max_tokens=400))
    with pytest.raises(BudgetError):
        c.complete(ask(max_tokens=400))
    assert server.requests == []  # refused before sending


def test_budget_is_never_exceeded_and_stops_the_rest(server, tmp_path):
    # each request reserves ~415 tokens and uses ~85: whether the three threads overlap or
    # not, the budget stops the run after a few requests
    c = client(server, tmp_path, budget_tokens=700, concurrency=3)
    replies = c.complete_all([ask(seed=i, max_tokens=400) for i in range(10)])
    done = [r for r in replies if r is not None and not isinstance(r, Exception)]
    assert 1 <= len(done) < 10
    assert any(isinstance(r, BudgetError) for r in replies)
    assert c.usage.tokens_in + c.usage.tokens_out <= 700
    assert len(server.requests) == len(done)


def test_money_budget_and_prices(server, tmp_path):
    prices = {"test-model": [1000.0, 2000.0]}  # dollars per million tokens
    c = client(server, tmp_path, prices=prices)
    r = c.complete(ask())
    assert c.usage.cost_usd == pytest.approx((r.tokens_in * 1000 + r.tokens_out * 2000) / 1e6)
    c2 = client(server, tmp_path, prices=prices, budget_usd=0.5)
    with pytest.raises(BudgetError, match=r"money budget \(\$0.5\) is smaller than one request"):
        c2.check_budget_for(ask(max_tokens=400))
    with pytest.raises(ParameterError, match="a money budget needs a price for model"):
        client(server, tmp_path, budget_usd=1.0)
    (tmp_path / "p.yaml").write_text("test-model: [1, 2]\n")
    assert load_prices(tmp_path / "p.yaml")["test-model"].output_per_million == 2
    (tmp_path / "bad.json").write_text('{"m": "cheap"}')
    with pytest.raises(ParameterError, match="gives model 'm' the price 'cheap'"):
        load_prices(tmp_path / "bad.json")


def test_cache_answers_repeats_at_no_cost(server, tmp_path):
    c = client(server, tmp_path, cache_dir=tmp_path / "cache")
    a = c.complete(ask())
    b = c.complete(ask())
    assert a.text == b.text and b.cached and not a.cached
    assert len(server.requests) == 1 and c.usage.cached_requests == 1 and c.usage.requests == 1
    # a different seed is a different request
    c.complete(ask(seed=9))
    assert len(server.requests) == 2
    events = [r["event"] for r in read_audit_log(tmp_path / "audit.jsonl")]
    assert events == ["sent", "done", "cached", "sent", "done"]
    # no cache unless asked
    client(server, tmp_path).complete(ask())
    assert len(server.requests) == 3


def test_concurrency_limit(server, tmp_path):
    server.script.extend([Reply(delay=0.3)] * 8)
    c = client(server, tmp_path, concurrency=3)
    replies = c.complete_all([ask(seed=i) for i in range(8)])
    assert all(r is not None and not isinstance(r, Exception) for r in replies)
    assert 2 <= server.max_in_flight <= 3


@pytest.mark.parametrize(
    ("url", "local"),
    [
        ("http://localhost:8000/v1", True),
        ("http://127.0.0.1:11434/v1", True),
        ("http://127.8.9.10/v1", True),
        ("http://[::1]:8000/v1", True),
        ("https://api.openai.com/v1", False),
        ("http://10.0.0.5:8000/v1", False),
        ("http://192.168.1.20/v1", False),
        ("http://localhost.example.com/v1", False),
        ("http://0.0.0.0:8000/v1", False),
    ],
)
def test_what_counts_as_this_machine(url, local):
    assert is_local_endpoint(url) is local


def test_gate_refuses_real_rows_to_a_remote_endpoint_before_sending(tmp_path):
    c = ChatClient(endpoint="https://api.openai.com/v1", model="m", audit_log=tmp_path / "a.jsonl")
    with pytest.raises(RemotePHIError, match="api.openai.com, which is not this machine"):
        c.complete(ask(real_rows=5))
    assert not (tmp_path / "a.jsonl").exists()  # nothing was sent, so nothing logged
    ChatClient(endpoint="https://api.openai.com/v1", model="m", allow_remote_phi=True).check_gate(5)
    c.check_gate(0)  # no real rows: no objection


def test_gate_treats_data_derived_from_real_rows_like_real_rows(server, tmp_path):
    derived = {"type": "categories", "glu": "widened range"}
    remote = ChatClient(endpoint="https://api.openai.com/v1", model="m")
    with pytest.raises(RemotePHIError, match=r"derived from the real rows .* of 2 columns"):
        remote.check_gate(0, derived)
    remote.check_gate(0, {})  # nothing from the data: nothing to refuse
    c = client(server, tmp_path)
    c.complete(ask(derived=derived))
    sent = [r for r in read_audit_log(tmp_path / "audit.jsonl") if r["event"] == "sent"]
    assert sent[-1]["derived"] == derived and sent[-1]["real_rows"] == 0


def test_bad_settings():
    with pytest.raises(ParameterError, match="is not an http"):
        ChatClient(endpoint="ftp://x/v1", model="m")
    with pytest.raises(ParameterError, match="model must be"):
        ChatClient(endpoint="http://127.0.0.1/v1", model=" ")
    with pytest.raises(ParameterError, match="budget_tokens must be a whole number >= 1"):
        ChatClient(endpoint="http://127.0.0.1/v1", model="m", budget_tokens=0)
    with pytest.raises(ParameterError, match="concurrency"):
        ChatClient(endpoint="http://127.0.0.1/v1", model="m", concurrency=0)


def test_audit_log_stays_valid_jsonl_after_a_crash(tmp_path):
    """Kill a process while its request is in flight: every line still parses."""
    log = tmp_path / "audit.jsonl"
    script = textwrap.dedent(
        f"""
        from healthsynth.llm import ChatClient, ChatRequest
        from healthsynth.llm.testing import ChatServer, Reply
        with ChatServer(lambda body: '{{"rows": []}}') as s:
            c = ChatClient(endpoint=s.url, model="test-model", audit_log={str(log)!r})
            for i in range(3):
                c.complete(ChatRequest(messages=[{{"role": "user", "content": "hi"}}],
                                       max_tokens=50, real_rows=1, columns=["a"]))
            s.script.append(Reply(delay=60))
            print("ready", flush=True)
            c.complete(ChatRequest(messages=[{{"role": "user", "content": "hi"}}],
                                   max_tokens=50, real_rows=1, columns=["a"]))
        """
    )
    proc = subprocess.Popen(
        [sys.executable, "-c", script], stdout=subprocess.PIPE, text=True, cwd=os.getcwd()
    )
    try:
        assert proc.stdout is not None and proc.stdout.readline().strip() == "ready"
        deadline = time.time() + 20
        while time.time() < deadline and log.read_text().count('"sent"') < 4:
            time.sleep(0.05)
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait(10)
        assert proc.stdout is not None
        proc.stdout.close()
    records = read_audit_log(log)  # raises on a broken line
    assert [r["event"] for r in records] == ["sent", "done"] * 3 + ["sent"]
    assert records[-1]["real_rows"] == 1 and records[-1]["columns"] == ["a"]


def test_a_proxy_in_the_environment_never_carries_local_requests(server, tmp_path, monkeypatch):
    """HTTP_PROXY would route 127.0.0.1 traffic through another host, past the PHI gate."""
    with ChatServer(lambda body: '{"rows": []}') as proxy:
        proxy_url = proxy.url.removesuffix("/v1")
        for var in ("HTTP_PROXY", "http_proxy", "ALL_PROXY"):
            monkeypatch.setenv(var, proxy_url)
        monkeypatch.delenv("NO_PROXY", raising=False)
        monkeypatch.delenv("no_proxy", raising=False)
        c = client(server, tmp_path)
        c.check_model()
        assert json.loads(c.complete(ask(real_rows=3)).text)["rows"]
        assert len(server.requests) == 1 and proxy.requests == []


def test_cache_keys_differ_by_seed_even_when_it_is_not_sent(server, tmp_path):
    c = client(server, tmp_path, cache_dir=tmp_path / "cache", send_seed=False)
    a, b = c.complete(ask(seed=1)), c.complete(ask(seed=2))
    assert not b.cached and len(server.requests) == 2 and "seed" not in server.requests[-1]
    assert c.complete(ask(seed=2)).cached and a.text


@pytest.mark.parametrize("raw", [b"{not json", b'"just a string"', b"[]"])
def test_a_body_that_is_not_a_chat_completion(server, tmp_path, raw):
    server.script.append(Reply(raw=raw))
    c = client(server, tmp_path)
    with pytest.raises(EndpointError, match="not a chat completion; check that --endpoint"):
        c.complete(ask())
    assert c.usage.failed_requests == 1
    replies = c.complete_all([ask(seed=5)])  # the next one is fine
    assert json.loads(replies[0].text)["rows"]


def test_reply_without_usage_is_charged_its_whole_allowance(server, tmp_path):
    server.script.append(Reply(usage=False))
    c = client(server, tmp_path, budget_tokens=5000)
    reply = c.complete(ask(max_tokens=400))
    assert not reply.usage_reported and reply.tokens_out == 400
    assert c.usage.to_record()["requests_without_usage"] == 1


def test_the_audit_log_counts_http_attempts(server, tmp_path):
    server.script.extend([Reply(status=500), Reply(status=429, headers={"Retry-After": "0"})])
    c = client(server, tmp_path, max_retries=3)
    c.complete(ask())
    done = read_audit_log(tmp_path / "audit.jsonl")[-1]
    assert done["event"] == "done" and done["attempts"] == 3


def test_a_key_over_plain_http_to_another_host_is_warned_about(monkeypatch):
    monkeypatch.setenv("HS_TEST_KEY", "sk-x")
    with pytest.warns(UserWarning, match="will travel unencrypted to llm.example.org"):
        ChatClient(endpoint="http://llm.example.org/v1", model="m", api_key_env="HS_TEST_KEY")
