"""A scripted chat-completions endpoint on a loopback address, for tests and benchmarks.

It speaks the parts of the OpenAI HTTP API that :class:`~healthsynth.llm.ChatClient` uses
(``GET /v1/models``, ``POST /v1/chat/completions``) over a real socket, so the SDK, the network
stack, retries and timeouts all run for real; only the "model" is a script. Faults are queued as
:class:`Reply` objects (a status with headers, a delay, a broken body, a truncated reply); when
the queue is empty, a :class:`RowReplier` answers with rows drawn from a table, perturbed like a
noisy LLM would (jittered numbers, some flipped labels, some out-of-domain values).

Example::

    with ChatServer(RowReplier(df, flip={"type": 0.2})) as server:
        server.script.append(Reply(status=429, headers={"Retry-After": "1"}))
        client = ChatClient(endpoint=server.url, model=server.models[0])
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import math
import re
import threading
import time
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import numpy as np
import pandas as pd

__all__ = ["ChatServer", "Reply", "RowReplier"]


@dataclass
class Reply:
    """One scripted answer.

    Parameters
    ----------
    status
        HTTP status; not 200 sends an OpenAI-style error body with ``message``.
    content
        The assistant message text; None lets the replier write it.
    finish_reason
        Sent as the choice's finish reason.
    headers
        Extra response headers (e.g. ``Retry-After``).
    delay
        Seconds to wait before answering (a slow server).
    usage
        Whether to report token usage.
    raw
        Bytes to send as the whole body instead of a chat completion (a broken server).
    truncate
        Keep only this share of the replier's text and finish with ``length``.
    message
        The error message of a non-200 answer.
    """

    status: int = 200
    content: str | None = None
    finish_reason: str = "stop"
    headers: Mapping[str, str] = field(default_factory=dict)
    delay: float = 0.0
    usage: bool = True
    raw: bytes | None = None
    truncate: float | None = None
    message: str = "scripted error"


class RowReplier:
    """Answers a generation prompt with rows drawn from ``pool`` and perturbed.

    The number of rows comes from the JSON schema's ``minItems`` (or "N rows" or "N new
    records" in the prompt); the reply is JSON ``{"rows": [...]}`` when the request asks for
    JSON, else CSV with a header. ``enum``, ``minimum`` and ``maximum`` in the schema's row
    properties restrict which pool rows are drawn (as a model that follows a schema would).
    Draws are seeded by the request's seed and prompt, so the same request gets the same reply.

    Parameters
    ----------
    pool
        The table rows are drawn from.
    jitter
        Relative standard deviation of the noise on numeric values.
    flip
        Column -> probability that a drawn row gets another of the column's values.
    invalid
        Probability that a drawn row gets one value outside its column's domain.
    """

    def __init__(
        self,
        pool: pd.DataFrame,
        *,
        jitter: float = 0.05,
        flip: Mapping[str, float] | None = None,
        invalid: float = 0.0,
    ) -> None:
        self.pool = pool.reset_index(drop=True)
        self.jitter = jitter
        self.flip = dict(flip or {})
        self.invalid = invalid
        self.decimals = {
            c: _decimals(self.pool[c])
            for c in self.pool.columns
            if pd.api.types.is_numeric_dtype(self.pool[c])
            and not pd.api.types.is_bool_dtype(self.pool[c])
        }

    def __call__(self, body: Mapping[str, Any]) -> str:
        """The reply text for a request body."""
        messages = body.get("messages") or [{}]
        prompt = str(messages[-1].get("content", ""))
        fmt = body.get("response_format") or {}
        schema = (fmt.get("json_schema") or {}).get("schema") if isinstance(fmt, dict) else None
        want_json = bool(fmt) or "json" in prompt.lower()
        n = _row_count(schema, prompt)
        digest = hashlib.sha256(
            (str(body.get("seed")) + json.dumps(messages, sort_keys=True)).encode()
        ).digest()
        rng = np.random.default_rng(int.from_bytes(digest[:8], "little"))
        pool = self._allowed(schema)
        rows = [self._row(pool, rng) for _ in range(n)] if len(pool) else []
        if want_json:
            return json.dumps({"rows": rows})
        buf = io.StringIO()
        writer = csv.writer(buf, lineterminator="\n")
        writer.writerow(list(self.pool.columns))
        for r in rows:
            writer.writerow(["" if r[c] is None else r[c] for c in self.pool.columns])
        return buf.getvalue()

    def _allowed(self, schema: Any) -> pd.DataFrame:
        pool = self.pool
        try:
            props = schema["properties"]["rows"]["items"]["properties"]
        except (KeyError, TypeError):
            return pool
        keep = pd.Series(True, index=pool.index)
        for col, spec in props.items():
            if col not in pool or not isinstance(spec, Mapping):
                continue
            if "enum" in spec and len(spec["enum"]) < pool[col].nunique():
                keep &= pool[col].astype(str).isin([str(v) for v in spec["enum"]])
            if "minimum" in spec:
                keep &= pd.to_numeric(pool[col], errors="coerce") >= spec["minimum"]
            if "maximum" in spec:
                keep &= pd.to_numeric(pool[col], errors="coerce") <= spec["maximum"]
        return pool[keep]

    def _row(self, pool: pd.DataFrame, rng: np.random.Generator) -> dict[str, Any]:
        src = pool.iloc[int(rng.integers(len(pool)))]
        row: dict[str, Any] = {}
        for c in self.pool.columns:
            v = src[c]
            if v is None or (isinstance(v, float) and math.isnan(v)):
                row[c] = None
            elif c in self.decimals:
                x = float(v) * (1 + self.jitter * rng.standard_normal())
                d = self.decimals[c]
                row[c] = int(round(x)) if d == 0 else round(x, d)
            elif isinstance(v, (bool, np.bool_)):
                row[c] = bool(v)
            else:
                row[c] = v.item() if hasattr(v, "item") else v
        for c, p in self.flip.items():
            if rng.random() < p:
                others = [v for v in self.pool[c].dropna().unique() if v != row[c]]
                if others:
                    v = others[int(rng.integers(len(others)))]
                    row[c] = v.item() if hasattr(v, "item") else v
        if self.invalid and rng.random() < self.invalid:
            c = self.pool.columns[int(rng.integers(len(self.pool.columns)))]
            row[c] = -999999 if c in self.decimals else "not-a-category"
        return row


def _decimals(s: pd.Series) -> int:
    x = pd.to_numeric(s, errors="coerce").dropna()
    for d in range(0, 6):
        if np.allclose(x, x.round(d)):
            return d
    return 6


def _row_count(schema: Any, prompt: str) -> int:
    try:
        n = int(schema["properties"]["rows"]["minItems"])
        if n > 0:
            return n
    except (KeyError, TypeError, ValueError):
        pass
    m = re.search(r"(\d+)\s+(?:new\s+|more\s+|synthetic\s+)*(?:rows|records)", prompt)
    return int(m.group(1)) if m else 10


class ChatServer:
    """A chat-completions server on a loopback address (a free port), in a background thread.

    Parameters
    ----------
    replier
        Writes the answer text for a request body when the script queue is empty.
    models
        The model names served (others get 404, as from a real server).
    api_key
        When set, requests must carry it as a bearer token (others get 401, whose message
        echoes the key given, as some servers do).
    host
        The address to listen on: ``127.0.0.1`` (default), another 127.0.0.0/8 address such as
        ``127.0.0.2`` (a second "host" for redirect tests), or ``::1``.

    Attributes
    ----------
    url
        The base URL to give a client (``http://127.0.0.1:PORT/v1``).
    seen
        Every request of any method and path, as ``(method, path, headers)`` with lower-case
        header names: what a test asserts on when nothing at all may reach this server.
    script
        Replies to give, first in first out, before the replier answers.
    requests
        Every chat request body received, in arrival order.
    max_in_flight
        The most chat requests that were being answered at the same time.
    """

    def __init__(
        self,
        replier: Callable[[Mapping[str, Any]], str] | None = None,
        *,
        models: Sequence[str] = ("test-model",),
        api_key: str | None = None,
        host: str = "127.0.0.1",
    ) -> None:
        self.replier = replier or (lambda body: '{"rows": []}')
        self.host = host
        self.seen: list[tuple[str, str, dict[str, str]]] = []
        self.models = list(models)
        self.api_key = api_key
        self.script: deque[Reply] = deque()
        self.requests: list[dict[str, Any]] = []
        self.max_in_flight = 0
        self._in_flight = 0
        self._lock = threading.Lock()
        self._httpd: ThreadingHTTPServer | None = None
        self.url = ""

    def __enter__(self) -> ChatServer:
        handler = type("Handler", (_Handler,), {"chat": self})
        import socket

        six = ":" in self.host
        server_class = type(
            "Server",
            (ThreadingHTTPServer,),
            {"address_family": socket.AF_INET6 if six else socket.AF_INET},
        )
        self._httpd = server_class((self.host, 0), handler)
        self._httpd.daemon_threads = True
        where = f"[{self.host}]" if six else self.host
        self.url = f"http://{where}:{self._httpd.server_address[1]}/v1"
        threading.Thread(target=self._httpd.serve_forever, daemon=True).start()
        return self

    def __exit__(self, *exc: object) -> None:
        if self._httpd is not None:
            self._httpd.shutdown()
            self._httpd.server_close()
            self._httpd = None


class _Handler(BaseHTTPRequestHandler):
    """Answers as a chat-completions server does, from the state of :attr:`chat`."""

    protocol_version = "HTTP/1.1"
    #: the server whose models, key, script and replier this handler answers with
    chat: ChatServer

    def log_message(self, *args: Any) -> None:
        return None

    def parse_request(self) -> bool:
        ok = super().parse_request()
        if ok:
            with self.chat._lock:
                self.chat.seen.append(
                    (
                        self.command,
                        self.path,
                        {k.lower(): v for k, v in self.headers.items()},
                    )
                )
        return ok

    def _authorized(self) -> bool:
        if self.chat.api_key is None:
            return True
        given = self.headers.get("Authorization", "").removeprefix("Bearer ")
        if given == self.chat.api_key:
            return True
        self._send(401, _error(f"Incorrect API key provided: {given}", "auth"))
        return False

    def do_GET(self) -> None:  # noqa: N802 - http.server's naming
        if not self._authorized():
            return
        if self.path.rstrip("/") == "/v1/models":
            data = [{"id": m, "object": "model", "owned_by": "test"} for m in self.chat.models]
            self._send(200, {"object": "list", "data": data})
        else:
            self._send(404, _error("not found", "not_found"))

    def do_POST(self) -> None:  # noqa: N802 - http.server's naming
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length)
        if self.path.rstrip("/") != "/v1/chat/completions":
            self._send(404, _error("not found", "not_found"))
            return
        if not self._authorized():
            return
        try:
            body = json.loads(raw)
        except json.JSONDecodeError:
            self._send(400, _error("body is not JSON", "invalid_request_error"))
            return
        if body.get("model") not in self.chat.models:
            self._send(404, _error(f"The model `{body.get('model')}` does not exist", "nf"))
            return
        with self.chat._lock:
            self.chat.requests.append(body)
            reply = self.chat.script.popleft() if self.chat.script else Reply()
            self.chat._in_flight += 1
            self.chat.max_in_flight = max(self.chat.max_in_flight, self.chat._in_flight)
        try:
            self._answer(body, reply)
        finally:
            with self.chat._lock:
                self.chat._in_flight -= 1

    def _answer(self, body: dict[str, Any], reply: Reply) -> None:
        if reply.delay:
            time.sleep(reply.delay)
        if reply.raw is not None:
            self._send_bytes(reply.status, reply.raw, reply.headers)
            return
        if reply.status != 200:
            self._send(reply.status, _error(reply.message, "scripted"), reply.headers)
            return
        text = reply.content if reply.content is not None else self.chat.replier(body)
        finish = reply.finish_reason
        if reply.truncate is not None:
            text = text[: int(len(text) * reply.truncate)]
            finish = "length"
        prompt_chars = sum(len(str(m.get("content", ""))) for m in body["messages"])
        completion: dict[str, Any] = {
            "id": f"chatcmpl-{len(self.chat.requests)}",
            "object": "chat.completion",
            "created": int(time.time()),
            "model": body["model"],
            "choices": [
                {
                    "index": 0,
                    "message": {"role": "assistant", "content": text},
                    "finish_reason": finish,
                }
            ],
        }
        if reply.usage:
            p, c = math.ceil(prompt_chars / 4), math.ceil(len(text) / 4)
            completion["usage"] = {
                "prompt_tokens": p,
                "completion_tokens": c,
                "total_tokens": p + c,
            }
        self._send(200, completion, reply.headers)

    def _send(self, status: int, payload: Any, headers: Mapping[str, str] | None = None) -> None:
        self._send_bytes(status, json.dumps(payload).encode("utf-8"), headers)

    def _send_bytes(
        self, status: int, data: bytes, headers: Mapping[str, str] | None = None
    ) -> None:
        try:
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            for k, v in (headers or {}).items():
                self.send_header(k, v)
            self.end_headers()
            self.wfile.write(data)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the client gave up (a timeout test)


def _error(message: str, kind: str) -> dict[str, Any]:
    return {"error": {"message": message, "type": kind, "code": None}}
