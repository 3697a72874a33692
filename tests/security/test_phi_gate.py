"""The PHI gate against a hostile endpoint, a crafted model folder and odd URL spellings.

Every request goes over a real socket to :class:`healthsynth.llm.testing.ChatServer`; a second
server on 127.0.0.2 plays "another host" and must never see a request.
"""

from __future__ import annotations

import http.server
import json
import socket
import threading

import pytest

from healthsynth.data import infer_schema
from healthsynth.errors import EndpointError, ParameterError, RemotePHIError
from healthsynth.generators import load_generator
from healthsynth.generators.prompted_llm import PromptedLLM
from healthsynth.llm import ChatClient, ChatRequest, is_local_endpoint, read_audit_log
from healthsynth.llm.testing import ChatServer, Reply, RowReplier
from tests.helpers import real

REMOTE = "https://llm.example.org/v1"


@pytest.fixture(scope="module")
def pima():
    return real("MASS/Pima.tr")


@pytest.fixture(scope="module")
def train(pima):
    return pima.sample(30, random_state=2).reset_index(drop=True)


@pytest.fixture
def server(pima):
    with ChatServer(RowReplier(pima)) as s:
        yield s


@pytest.fixture
def other():
    """Another host: every request it sees would be a leak."""
    with ChatServer(RowReplier(real("MASS/Pima.tr")), host="127.0.0.2") as s:
        yield s


@pytest.fixture
def opened():
    """Clients to close after the test (a connection left to the garbage collector surfaces
    later as a ResourceWarning in another test's output)."""
    clients: list[ChatClient] = []
    yield clients
    for c in clients:
        c.close()


def ask(real_rows: int = 3) -> ChatRequest:
    return ChatRequest(
        messages=[{"role": "user", "content": "Write 3 rows as JSON."}],
        max_tokens=200,
        real_rows=real_rows,
        columns=["glu", "type"],
    )


# -- redirects ------------------------------------------------------------------------------------
@pytest.mark.parametrize("status", [301, 302, 303, 307, 308])
def test_a_redirect_is_never_followed(status, server, other, tmp_path, monkeypatch, opened):
    monkeypatch.setenv("HS_TEST_KEY", "sk-do-not-forward")
    target = other.url.replace("http://", "http://user:pw@") + "/chat/completions?token=abc"
    server.script.append(Reply(status=status, headers={"Location": target}))
    log = tmp_path / "audit.jsonl"
    c = ChatClient(
        endpoint=server.url, model="test-model", audit_log=log, api_key_env="HS_TEST_KEY"
    )
    opened.append(c)
    with pytest.raises(
        EndpointError, match=f"answered {status} and redirected the request to"
    ) as e:
        c.complete(ask())
    assert other.seen == []  # nothing at all reached the other host
    message = str(e.value)
    assert "127.0.0.2" in message and "pw" not in message and "abc" not in message
    failed = read_audit_log(log)[-1]
    assert failed["event"] == "failed" and failed["followed"] is False
    assert failed["redirect_to"].startswith("http://***@127.0.0.2:")
    assert "token=***" in failed["redirect_to"]


def test_a_redirect_of_the_model_list_is_not_followed(other, tmp_path, opened):
    # the scripted server redirects chat requests only; this one answers every GET with a 308
    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self):  # noqa: N802 - http.server's naming
            self.send_response(308)
            self.send_header("Location", other.url + "/models")
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args):
            return None

    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    try:
        url = f"http://127.0.0.1:{httpd.server_address[1]}/v1"
        c = ChatClient(endpoint=url, model="test-model", audit_log=tmp_path / "a.jsonl")
        opened.append(c)
        with pytest.raises(EndpointError, match="answered 308 and redirected"):
            c.check_model()
    finally:
        httpd.shutdown()
        httpd.server_close()
    assert other.seen == []
    assert read_audit_log(tmp_path / "a.jsonl")[-1]["redirect_to"].startswith("http://127.0.0.2")


def test_a_redirect_during_sampling_stops_the_run(server, other, train, tmp_path):
    gen = PromptedLLM(
        endpoint=server.url,
        llm_model="test-model",
        audit_log=str(tmp_path / "audit.jsonl"),
        concurrency=1,
        examples=10,
    ).fit(train)
    server.script.append(Reply(status=307, headers={"Location": other.url + "/chat/completions"}))
    with pytest.raises(EndpointError, match="follows no redirects"):
        gen.sample(20, seed=0)
    assert other.seen == []


# -- settings a model folder may not choose -------------------------------------------------------
def _crafted_folder(server, train, tmp_path, **params):
    """Fit and save a model, then edit its generator.json as an attacker would."""
    gen = PromptedLLM(
        endpoint=server.url,
        llm_model="test-model",
        audit_log=str(tmp_path / "fit-audit.jsonl"),
        examples=10,
    ).fit(train)
    folder = gen.save(tmp_path / "model")
    meta = json.loads((folder / "generator.json").read_text())
    meta["params"].update(params)
    (folder / "generator.json").write_text(json.dumps(meta))
    return folder


def test_a_folder_cannot_widen_the_gate(server, train, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("HS_SECRET", "hunter2-secret-value")
    monkeypatch.setenv("OPENAI_API_KEY", "sk-the-users-own-key")
    elsewhere = tmp_path / "elsewhere"
    folder = _crafted_folder(
        server,
        train,
        tmp_path,
        allow_remote_phi=True,
        audit_log=str(elsewhere / "chosen.jsonl"),
        api_key_env="HS_SECRET",
        cache_dir=str(elsewhere / "cache"),
    )
    gen = load_generator(folder)
    assert gen.allow_remote_phi is False and gen.api_key_env == "OPENAI_API_KEY"
    assert gen.audit_log == "healthsynth-llm-audit.jsonl" and gen.cache_dir is None
    assert gen.endpoint == server.url  # a local endpoint may be kept
    before = len(server.seen)
    gen.sample(10, seed=0)
    headers = [h for _, _, h in server.seen[before:]]
    assert headers and all("hunter2" not in json.dumps(h) for h in headers)
    assert all(h.get("authorization") == "Bearer sk-the-users-own-key" for h in headers)
    assert not elsewhere.exists()  # neither the chosen log nor the cache was written
    assert (tmp_path / "healthsynth-llm-audit.jsonl").is_file()


def test_a_folder_cannot_choose_a_remote_endpoint(server, train, tmp_path):
    folder = _crafted_folder(server, train, tmp_path, endpoint=REMOTE, allow_remote_phi=True)
    for gen in (load_generator(folder), PromptedLLM.load(folder, allow_remote_phi=True)):
        assert gen.endpoint is None
        before = len(server.seen)
        with pytest.raises(ParameterError, match="fitted against https://llm.example.org/v1"):
            gen.sample(5, seed=0)
        assert len(server.seen) == before
    # given again by the call in use, with the flag, the endpoint is the user's choice
    gen = PromptedLLM.load(folder, endpoint=REMOTE, allow_remote_phi=True)
    assert gen.endpoint == REMOTE and gen.allow_remote_phi is True


def test_a_folder_with_a_credential_in_its_endpoint_is_not_used(server, train, tmp_path):
    bad = server.url.replace("http://", "http://user:s3cret@")
    folder = _crafted_folder(server, train, tmp_path, endpoint=bad)
    gen = load_generator(folder)
    assert gen.endpoint is None
    with pytest.raises(ParameterError, match="fitted against http://\\*\\*\\*@127.0.0.1") as e:
        gen.sample(5, seed=0)
    assert "s3cret" not in str(e.value)


# -- zero-shot carries data derived from the real rows --------------------------------------------
def test_zero_shot_is_gated_and_says_what_it_derived(server, train, tmp_path):
    log = tmp_path / "audit.jsonl"
    schema = infer_schema(train, target="type")
    with pytest.raises(RemotePHIError, match="data derived from the real rows"):
        PromptedLLM(endpoint=REMOTE, llm_model="m", prompt="zero-shot", audit_log=str(log)).fit(
            train, schema=schema
        )
    assert not log.exists()
    gen = PromptedLLM(
        endpoint=server.url, llm_model="test-model", prompt="zero-shot", audit_log=str(log)
    ).fit(train, schema=schema)
    gen.endpoint = REMOTE  # the same model pointed at another host at sampling time
    before = len(server.seen)
    with pytest.raises(RemotePHIError, match="llm.example.org, which is not this machine"):
        gen.sample(5, seed=0)
    assert len(server.seen) == before
    gen.endpoint = server.url
    gen.sample(5, seed=0)
    sent = [r for r in read_audit_log(log) if r.get("purpose") == "generate"]
    assert sent and all(r["real_rows"] == 0 for r in sent)
    derived = sent[-1]["derived"]
    assert derived["type"] == "categories" and derived["glu"] == "widened range"
    gen.reveal_ranges = True
    gen.sample(5, seed=0)
    derived = [r for r in read_audit_log(log) if r.get("purpose") == "generate"][-1]["derived"]
    assert derived["glu"].startswith("observed range")


# -- credentials in the endpoint URL --------------------------------------------------------------
@pytest.mark.parametrize(
    "url",
    [
        "https://user:s3cret@llm.example.org/v1",
        "https://:s3cret@llm.example.org/v1",
        "https://s3cret@llm.example.org/v1",
        "https://llm.example.org/v1?api-key=s3cret",
        "https://llm.example.org/v1?key=s3cret",
        "https://llm.example.org/v1?token=s3cret",
        "https://llm.example.org/v1?access_token=s3cret",
        "https://llm.example.org/v1?sig=s3cret&x=1",
        "http://user:s3cret@127.0.0.1:8000/v1",
    ],
)
def test_credentials_in_the_url_are_refused_without_repeating_them(url, train, tmp_path):
    log = tmp_path / "a.jsonl"
    with pytest.raises(ParameterError, match="--api-key-env") as e:
        ChatClient(endpoint=url, model="m", audit_log=log)
    assert "s3cret" not in str(e.value)
    with pytest.raises(ParameterError, match="--api-key-env") as e:
        PromptedLLM(endpoint=url, llm_model="m", audit_log=str(log), allow_remote_phi=True).fit(
            train
        )
    assert "s3cret" not in str(e.value) and not log.exists()


def test_the_key_variable_must_be_a_variable_name():
    with pytest.raises(ParameterError, match="api_key_env must be the name"):
        ChatClient(endpoint="http://127.0.0.1:1/v1", model="m", api_key_env="$(id)")


# -- spellings of "this machine" ------------------------------------------------------------------
@pytest.mark.parametrize(
    ("url", "local"),
    [
        ("http://localhost:8000/v1", True),
        ("http://LocalHost:8000/v1", True),
        ("http://127.0.0.1:11434/v1", True),
        ("http://127.255.255.254/v1", True),
        ("http://[::1]:8000/v1", True),
        ("http://[0:0:0:0:0:0:0:1]/v1", True),
        ("http://[::ffff:127.0.0.1]/v1", True),
        # spellings a resolver or the OS may send to this machine count as remote: the gate asks
        ("http://localhost./v1", False),
        ("http://foo.localhost/v1", False),
        ("http://127.1/v1", False),
        ("http://0x7f000001/v1", False),
        ("http://2130706433/v1", False),
        ("http://017700000001/v1", False),
        ("http://0.0.0.0:8000/v1", False),
        ("http://[::]/v1", False),
        ("http://[::127.0.0.1]/v1", False),
        ("http://127.0.0.1.nip.io/v1", False),
        ("http://localtest.me/v1", False),
        ("http://localhost.example.com/v1", False),
        ("http://%6c%6f%63%61%6c%68%6f%73%74/v1", False),
        ("https://api.openai.com/v1", False),
        ("http://10.0.0.5:8000/v1", False),
        ("http://169.254.169.254/v1", False),
        ("http://[fe80::1]/v1", False),
    ],
)
def test_what_counts_as_this_machine(url, local):
    assert is_local_endpoint(url) is local


@pytest.mark.parametrize(
    ("url", "why"),
    [
        ("http://localhost:80@evil.example/v1", "credentials"),
        ("http://evil.example#@127.0.0.1/v1", "fragment"),
        ("http://127.0.0.1\\@evil.example/v1", "backslashes"),
        ("http://127.0.0.1 .evil.example/v1", "spaces"),
        ("http://127.0.0.1\t/v1", "control characters"),
        ("http://\uff4c\uff4f\uff43\uff41\uff4c\uff48\uff4f\uff53\uff54/v1", "HTTP library"),
        ("https://llm.example.org/v1?api-version=1", "query part"),
        ("http://127.0.0.1:99999/v1", "port"),
        ("ftp://127.0.0.1/v1", "not an http"),
    ],
)
def test_urls_that_parsers_read_differently_are_refused(url, why):
    with pytest.raises(ParameterError, match=why):
        is_local_endpoint(url)


def test_international_host_names_pass_in_either_form():
    for url in ("https://bücher.example/v1", "https://xn--bcher-kva.example/v1"):
        assert is_local_endpoint(url) is False  # accepted, and remote


def test_localhost_counts_only_while_it_resolves_to_loopback(monkeypatch, tmp_path):
    assert is_local_endpoint("http://localhost:8000/v1")
    real_getaddrinfo = socket.getaddrinfo

    def hijacked(host, *args, **kwargs):
        if host == "localhost":
            return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", ("10.0.0.5", 0))]
        return real_getaddrinfo(host, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", hijacked)
    assert not is_local_endpoint("http://localhost:8000/v1")
    c = ChatClient(endpoint="http://localhost:8000/v1", model="m", audit_log=tmp_path / "a")
    with pytest.raises(RemotePHIError, match="localhost, which is not this machine"):
        c.complete(ask())


def test_an_ipv6_loopback_server_is_local(pima, tmp_path, opened):
    with ChatServer(RowReplier(pima), host="::1") as s:
        c = ChatClient(endpoint=s.url, model="test-model", audit_log=tmp_path / "a.jsonl")
        opened.append(c)
        assert c.local
        assert json.loads(c.complete(ask()).text)["rows"]
