"""Any OpenAI-compatible chat-completions endpoint, through the official ``openai`` SDK.

The SDK does the HTTP work: connection pooling, timeouts, and retries with exponential backoff on
429, 408, 409, 5xx and dropped connections, honouring ``Retry-After``. This module adds what the
SDK leaves to its callers: the PHI gate, a budget that stops *before* a request could exceed it,
token and money accounting from the replies' ``usage``, an opt-in response cache, the audit log,
a concurrency limit, and one-sentence errors that never contain the API key.
"""

from __future__ import annotations

import os
import re
import threading
import time
import uuid
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from healthsynth.errors import (
    BudgetError,
    EndpointError,
    MissingExtraError,
    ParameterError,
    RemotePHIError,
)
from healthsynth.llm._audit import AuditLog
from healthsynth.llm._budget import _Accounting
from healthsynth.llm._cache import ResponseCache, request_key
from healthsynth.llm._errors import _EndpointErrors
from healthsynth.llm._gate import endpoint_host, is_local_endpoint
from healthsynth.llm._prices import Price, load_prices
from healthsynth.llm._request import ChatReply, ChatRequest, Usage

__all__ = ["RESPONSE_FORMATS", "ChatClient", "ChatReply", "ChatRequest", "Usage"]

#: how a reply that must be JSON is asked for: a JSON schema the server enforces, plain JSON
#: mode, or only the prompt's words (for servers that support neither)
RESPONSE_FORMATS = ("json_schema", "json_object", "text")
#: characters per token assumed for a prompt before any reply has reported real counts; low on
#: purpose (numbers and punctuation tokenize densely), so the first estimate is on the high side
_FIRST_CHARS_PER_TOKEN = 2.0
_ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


class ChatClient(_Accounting, _EndpointErrors):
    """A chat-completions client with a PHI gate, budget, accounting, cache and audit log.

    Parameters
    ----------
    endpoint
        Base URL of the OpenAI-compatible API, e.g. ``https://api.openai.com/v1``,
        ``http://127.0.0.1:11434/v1`` (Ollama) or ``http://127.0.0.1:8000/v1`` (vLLM).
    model
        Model name as the server knows it.
    api_key_env
        Name of the environment variable that holds the API key (read when the client is
        made; never stored, logged or shown). Local servers usually need none.
    timeout
        Seconds to wait for one HTTP attempt (connecting gets at most 10 of them).
    max_retries
        Retries after a 429, 408, 409, 5xx, timeout or dropped connection (the SDK's backoff).
    concurrency
        Requests in flight at once in :meth:`complete_all`.
    response_format
        One of :data:`RESPONSE_FORMATS`.
    send_seed
        Send each request's seed (servers that support it then reproduce replies).
    cache_dir
        Folder for the response cache; None (default) caches nothing.
    audit_log
        JSONL file every request is logged to; None logs nowhere (the generators always give one).
    prices
        A price table (see :func:`healthsynth.llm.load_prices`); without a price for ``model``
        the money figures are None.
    budget_tokens, budget_usd
        Stop before a request could take the total past this many tokens (input plus the
        request's ``max_tokens``) or dollars. Cached replies cost nothing.
    allow_remote_phi
        Allow requests that hold real rows, or data derived from them, to go to an endpoint off
        this machine.

    Notes
    -----
    The endpoint URL may carry no credentials (see :mod:`healthsynth.llm._gate`), and the
    client follows no HTTP redirect: a 3xx answer becomes an :class:`EndpointError` naming
    where it pointed, and nothing is sent there.
    """

    def __init__(
        self,
        *,
        endpoint: str,
        model: str,
        api_key_env: str = "OPENAI_API_KEY",
        timeout: float = 60.0,
        max_retries: int = 3,
        concurrency: int = 4,
        response_format: str = "json_schema",
        send_seed: bool = True,
        cache_dir: str | Path | None = None,
        audit_log: str | Path | None = None,
        prices: str | Path | Mapping[str, Any] | None = None,
        budget_tokens: int | None = None,
        budget_usd: float | None = None,
        allow_remote_phi: bool = False,
    ) -> None:
        endpoint_host(endpoint)
        if not isinstance(model, str) or not model.strip():
            raise ParameterError(f"model must be the model name the server knows; got {model!r}")
        _check_positive("timeout", timeout)
        _check_count("max_retries", max_retries, low=0)
        _check_count("concurrency", concurrency, low=1)
        if response_format not in RESPONSE_FORMATS:
            raise ParameterError(
                f"response_format must be one of {', '.join(RESPONSE_FORMATS)}; "
                f"got {response_format!r}"
            )
        if not isinstance(api_key_env, str) or not _ENV_NAME.fullmatch(api_key_env):
            raise ParameterError(
                "api_key_env must be the name of an environment variable (letters, digits and "
                f"underscores, such as OPENAI_API_KEY); got {api_key_env!r}"
            )
        if budget_tokens is not None:
            _check_count("budget_tokens", budget_tokens, low=1)
        if budget_usd is not None:
            _check_positive("budget_usd", budget_usd)
        self.endpoint = endpoint.rstrip("/")
        self.model = model
        self.api_key_env = api_key_env
        self.timeout = float(timeout)
        self.max_retries = int(max_retries)
        self.concurrency = int(concurrency)
        self.response_format = response_format
        self.send_seed = send_seed
        self.local = is_local_endpoint(endpoint)
        self.allow_remote_phi = allow_remote_phi
        self.cache = ResponseCache(cache_dir) if cache_dir is not None else None
        self.audit = AuditLog(audit_log) if audit_log is not None else None
        self.price: Price | None = load_prices(prices).get(model)
        if budget_usd is not None and self.price is None:
            raise ParameterError(
                f"a money budget needs a price for model '{model}'; give one in the price table "
                "(model: [input_per_million, output_per_million])"
            )
        self.budget_tokens = budget_tokens
        self.budget_usd = budget_usd
        self.usage = Usage(cost_usd=0.0 if self.price is not None else None)
        self._key = os.environ.get(api_key_env) or None
        if self._key and not self.local and endpoint.lower().startswith("http://"):
            import warnings

            warnings.warn(
                f"the API key in {api_key_env} will travel unencrypted to "
                f"{endpoint_host(endpoint)} (http, not https); use an https endpoint",
                UserWarning,
                stacklevel=2,
            )
        self._lock = threading.Lock()
        self._reserved_tokens = 0
        self._reserved_usd = 0.0
        self._tokens_per_char = 1.0 / _FIRST_CHARS_PER_TOKEN
        self._local = threading.local()
        self._sdks: list[Any] = []
        self._pool: ThreadPoolExecutor | None = None

    def __repr__(self) -> str:
        return f"ChatClient(endpoint={self.endpoint!r}, model={self.model!r})"

    # -- the SDK ---------------------------------------------------------------------------
    def _client(self) -> Any:
        """The SDK client of the calling thread.

        Each worker thread gets its own client (and connection pool): with one pool shared by
        threads, the HTTP library in use here was seen to drop connections it was still
        opening without closing their sockets.
        """
        sdk = getattr(self._local, "sdk", None)
        if sdk is None:
            try:
                import openai
            except ImportError:
                raise MissingExtraError("openai", "llm", "prompting an LLM endpoint") from None
            # a proxy from the environment (HTTP_PROXY ...) would carry requests for a local
            # endpoint off this machine, past the PHI gate: local endpoints ignore it. A
            # redirect would resend the prompt to a host the gate never saw: none is followed
            http = openai.DefaultHttpxClient(
                event_hooks={"response": [self._on_response]},
                trust_env=not self.local,
                follow_redirects=False,
            )
            sdk = openai.OpenAI(
                base_url=self.endpoint,
                api_key=self._key or "no-key",
                # a host that drops packets should not hold each attempt for the whole
                # generation timeout: connecting gets at most 10 s
                timeout=openai.Timeout(self.timeout, connect=min(self.timeout, 10.0)),
                max_retries=self.max_retries,
                http_client=http,
            )
            self._local.sdk = sdk
            with self._lock:
                self._sdks.append(sdk)
        return sdk

    def _on_response(self, response: Any) -> None:
        self._local.attempts = getattr(self._local, "attempts", 0) + 1
        with self._lock:
            self.usage.http_attempts += 1
            code = str(response.status_code)
            self.usage.statuses[code] = self.usage.statuses.get(code, 0) + 1

    def close(self) -> None:
        """Close the HTTP connections of every thread's client."""
        with self._lock:
            pool, self._pool = self._pool, None
        if pool is not None:
            pool.shutdown(wait=True, cancel_futures=True)
        with self._lock:
            sdks, self._sdks = self._sdks, []
        for sdk in sdks:
            sdk.close()
        self._local = threading.local()

    # -- checks ----------------------------------------------------------------------------
    def check_gate(self, real_rows: int, derived: Mapping[str, str] | None = None) -> None:
        """Refuse, before anything is sent, to send real rows or data derived from them away.

        Nothing is refused for an endpoint on this machine, or with ``allow_remote_phi``.
        """
        if self.local or self.allow_remote_phi or not (real_rows or derived):
            return
        host = endpoint_host(self.endpoint)
        n = len(derived or {})
        what = (
            f"{real_rows} real row{'s' if real_rows != 1 else ''}"
            if real_rows
            else "data derived from the real rows (the categories or ranges of "
            f"{n} column{'s' if n != 1 else ''})"
        )
        raise RemotePHIError(
            f"the prompts would send {what} to {host}, which is not this machine; use a local "
            "endpoint, or pass --allow-remote-phi (allow_remote_phi=True) if your data "
            "governance allows it"
        )

    def check_budget_for(self, request: ChatRequest) -> int:
        """The tokens ``request`` may take; :class:`BudgetError` if the budget cannot pay it."""
        need = self._estimate_in(request) + request.max_tokens
        if self.budget_tokens is not None and need > self.budget_tokens:
            raise BudgetError(
                f"the token budget ({self.budget_tokens:,}) is smaller than one request (about "
                f"{need:,} tokens: ~{need - request.max_tokens:,} prompt + up to "
                f"{request.max_tokens:,} reply); raise --budget-tokens to at least {need:,}"
            )
        if self.budget_usd is not None and self.price is not None:
            cost = self.price.cost(need - request.max_tokens, request.max_tokens)
            if cost > self.budget_usd:
                raise BudgetError(
                    f"the money budget (${self.budget_usd:g}) is smaller than one request "
                    f"(up to ${cost:.4f}); raise --budget-usd"
                )
        return need

    def check_model(self) -> None:
        """Check the server serves ``model`` (skipped when it has no model list)."""
        sdk = self._client()  # raises MissingExtraError without the openai package
        import openai

        rid = uuid.uuid4().hex
        self._log(
            {"event": "sent", "id": rid, "purpose": "list-models", "real_rows": 0, "columns": []}
        )
        try:
            ids = [m.id for m in sdk.models.list()]
        except openai.NotFoundError:
            self._log({"event": "done", "id": rid, "models": None})
            return  # the server has no model list; the first request will tell
        except openai.OpenAIError as e:
            error = self._endpoint_error(e)
            self._log(
                {"event": "failed", "id": rid, "error": str(error), **self._redirect_record(e)}
            )
            raise error from None
        self._log({"event": "done", "id": rid, "models": len(ids)})
        if ids and self.model not in ids:
            shown = ", ".join(ids[:10]) + (" …" if len(ids) > 10 else "")
            raise EndpointError(
                f"the LLM endpoint {self.endpoint} does not serve the model '{self.model}'; it "
                f"serves: {shown}; check --llm-model"
            )

    # -- requests --------------------------------------------------------------------------
    def _body(self, request: ChatRequest) -> dict[str, Any]:
        body: dict[str, Any] = {
            "model": self.model,
            "messages": [dict(m) for m in request.messages],
            "max_tokens": int(request.max_tokens),
            "temperature": float(request.temperature),
        }
        if self.send_seed and request.seed is not None:
            body["seed"] = int(request.seed)
        if request.json_schema is not None and self.response_format == "json_schema":
            body["response_format"] = {
                "type": "json_schema",
                "json_schema": {"name": "rows", "schema": dict(request.json_schema)},
            }
        elif request.json_schema is not None and self.response_format == "json_object":
            body["response_format"] = {"type": "json_object"}
        return body

    def complete(self, request: ChatRequest) -> ChatReply:
        """Send one request (or answer it from the cache) and account for it."""
        self.check_gate(request.real_rows, request.derived)
        body = self._body(request)
        # the seed is part of the key even when it is not sent: otherwise requests that differ
        # only in their seed (a zero-shot prompt) would all get the first one's reply
        key = request_key({"endpoint": self.endpoint, "request_seed": request.seed, **body})
        base = self._audit_fields(request)
        if self.cache is not None:
            hit = self._cached(self.cache, key, base)
            if hit is not None:
                return hit
        est_in = self._estimate_in(request)
        need = self._reserve(est_in, request.max_tokens)
        rid = uuid.uuid4().hex
        self._log({"event": "sent", "id": rid, **base, "max_tokens": request.max_tokens})
        started = time.perf_counter()
        sdk = self._client()
        self._local.attempts = 0
        try:
            completion = sdk.chat.completions.create(**body)
            choice = completion.choices[0] if completion.choices else None
            text = (choice.message.content or "") if choice is not None else ""
            finish = str(choice.finish_reason) if choice is not None else "none"
            usage = completion.usage
            reported = usage is not None and usage.prompt_tokens is not None
        except Exception as e:  # noqa: BLE001 - every failure becomes one sentence
            raise self._failed(e, need, started, rid) from None
        seconds = time.perf_counter() - started
        tokens_in = int(usage.prompt_tokens) if reported else est_in
        # without usage the reply is charged its whole allowance, so the budget stays safe
        tokens_out = int(usage.completion_tokens or 0) if reported else int(request.max_tokens)
        self._release(
            need,
            tokens_in,
            tokens_out,
            seconds,
            failed=False,
            reported=reported,
            chars=request.prompt_chars(),
        )
        self._log(
            {
                "event": "done",
                "id": rid,
                "tokens_in": tokens_in,
                "tokens_out": tokens_out,
                "usage_reported": reported,
                "finish_reason": finish,
                "seconds": round(seconds, 3),
                "attempts": self._attempts(),
            }
        )
        reply = ChatReply(text, finish, tokens_in, tokens_out, seconds, False, reported)
        if self.cache is not None and choice is not None:
            self.cache.put(
                key,
                {
                    "text": text,
                    "finish_reason": finish,
                    "tokens_in": tokens_in,
                    "tokens_out": tokens_out,
                },
            )
        return reply

    def _audit_fields(self, request: ChatRequest) -> dict[str, Any]:
        """What the audit log records of every request: where it went and what it carried."""
        return {
            "endpoint": self.endpoint,
            "model": self.model,
            "purpose": request.purpose,
            "real_rows": int(request.real_rows),
            "columns": list(request.columns),
            "schema_columns": list(request.schema_columns),
            "derived": dict(request.derived),
            "prompt_sha256": request.prompt_hash(),
        }

    def _cached(self, cache: ResponseCache, key: str, base: dict[str, Any]) -> ChatReply | None:
        """The cached reply to the request of ``key`` (counted and logged), if there is one."""
        hit = cache.get(key)
        if hit is not None and isinstance(hit.get("text"), str):
            with self._lock:
                self.usage.cached_requests += 1
            self._log({"event": "cached", **base})
            return ChatReply(
                text=hit["text"],
                finish_reason=str(hit.get("finish_reason")),
                tokens_in=int(hit.get("tokens_in", 0)),
                tokens_out=int(hit.get("tokens_out", 0)),
                seconds=0.0,
                cached=True,
            )
        return None

    def _failed(
        self, e: Exception, need: tuple[int, float], started: float, rid: str
    ) -> EndpointError:
        """Account for and log a request that failed; the error to raise in one sentence."""
        seconds = time.perf_counter() - started
        self._release(need, 0, 0, seconds, failed=True)
        import openai

        if isinstance(e, openai.OpenAIError):
            error = self._endpoint_error(e)
        else:  # a 200 whose body is not a chat completion
            error = EndpointError(
                f"the LLM endpoint {self.endpoint} answered with something that is not a "
                "chat completion; check that --endpoint is the API's base URL (often ending "
                "in /v1)"
            )
        failed = {"event": "failed", "id": rid, "error": str(error)}
        self._log({**failed, **self._redirect_record(e), "attempts": self._attempts()})
        return error

    def complete_all(
        self, requests: Sequence[ChatRequest]
    ) -> list[ChatReply | BaseException | None]:
        """Send ``requests`` with at most ``concurrency`` in flight; results in request order.

        A request that fails gives its exception in its place; the others still run. Once one
        request finds the budget spent, requests not yet started are skipped (their place holds
        None).
        """
        halted = threading.Event()

        def one(req: ChatRequest) -> Any:
            if halted.is_set():
                return None
            try:
                return self.complete(req)
            except BudgetError as e:
                halted.set()
                return e
            except (EndpointError, RemotePHIError) as e:
                return e

        if self.concurrency == 1 or len(requests) <= 1:
            return [one(r) for r in requests]
        with self._lock:
            if self._pool is None:  # kept until close(), so its threads keep their clients
                self._pool = ThreadPoolExecutor(self.concurrency, thread_name_prefix="llm")
            pool = self._pool
        return list(pool.map(one, requests))

    # -- the audit log ---------------------------------------------------------------------
    def _attempts(self) -> int:
        """HTTP attempts of this thread's current request (each one carried the prompt)."""
        return int(getattr(self._local, "attempts", 0))

    def _log(self, record: dict[str, Any]) -> None:
        if self.audit is not None:
            self.audit.append({"endpoint": self.endpoint, "model": self.model, **record})


def _check_positive(name: str, value: Any) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not value > 0:
        raise ParameterError(f"{name} must be a positive number; got {value!r}")


def _check_count(name: str, value: Any, *, low: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < low:
        raise ParameterError(f"{name} must be a whole number >= {low}; got {value!r}")
