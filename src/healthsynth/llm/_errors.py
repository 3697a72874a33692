"""The client's errors: one sentence for each way a request fails, never holding the API key."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from healthsynth.errors import EndpointError
from healthsynth.llm._gate import redact_url


class _EndpointErrors:
    """Turns the SDK's exceptions into :class:`EndpointError` for :class:`ChatClient`.

    Uses the client's ``endpoint``, ``model``, ``timeout``, ``max_retries``, ``api_key_env`` and
    ``_key``.
    """

    endpoint: str
    model: str
    timeout: float
    max_retries: int
    api_key_env: str
    _key: str | None

    @staticmethod
    def _redirect_target(e: Exception) -> str | None:
        """Where a 3xx answer pointed (credentials hidden), or None for any other failure."""
        response = getattr(e, "response", None)
        code = getattr(response, "status_code", None)
        if not isinstance(code, int) or not 300 <= code < 400:
            return None
        location = response.headers.get("location")  # type: ignore[union-attr]
        if not location:
            return "(no Location header)"
        from urllib.parse import urljoin

        try:
            return redact_url(urljoin(str(response.request.url), location))  # type: ignore[union-attr]
        except (RuntimeError, ValueError):
            return redact_url(location)

    def _redirect_record(self, e: Exception) -> dict[str, Any]:
        target = self._redirect_target(e)
        return {} if target is None else {"redirect_to": target, "followed": False}

    def _scrub(self, text: str) -> str:
        if self._key:
            text = text.replace(self._key, "***")
        return " ".join(text.split())[:300]

    def _endpoint_error(self, e: Exception) -> EndpointError:
        import openai

        where = f"the LLM endpoint {self.endpoint}"
        tries = f"{self.max_retries + 1} attempt{'s' if self.max_retries else ''}"
        if isinstance(e, openai.APITimeoutError):
            return EndpointError(
                f"{where} did not answer within {self.timeout:g} s ({tries}); check that the "
                "server is up and not overloaded, or raise --timeout"
            )
        if isinstance(e, openai.APIConnectionError):
            return EndpointError(
                f"could not connect to {where} ({tries}); check --endpoint and that the server "
                "is running"
            )
        if isinstance(e, openai.AuthenticationError):
            how = (
                f"the variable {self.api_key_env} is not set"
                if not self._key
                else f"check the key in {self.api_key_env}"
            )
            return EndpointError(f"{where} refused the API key (401 Unauthorized): {how}")
        if isinstance(e, openai.PermissionDeniedError):
            return EndpointError(
                f"{where} denied access (403 Forbidden) with the key in {self.api_key_env}"
            )
        if isinstance(e, openai.NotFoundError):
            return EndpointError(
                f"{where} answered 404 Not Found for model '{self.model}': the model is not "
                "served there or the URL lacks the API path (often /v1); check --llm-model and "
                "--endpoint"
            )
        if isinstance(e, openai.RateLimitError):
            return EndpointError(
                f"{where} still answered 429 Too Many Requests after {tries}; lower "
                "--concurrency or try again later"
            )
        target = self._redirect_target(e)
        if isinstance(e, openai.APIStatusError) and target is not None:
            return EndpointError(
                f"{where} answered {e.status_code} and redirected the request to {target}; "
                "healthsynth follows no redirects, so nothing was sent there: if that server is "
                "the right one, give its URL as --endpoint (endpoint=), where the PHI gate "
                "checks it"
            )
        if isinstance(e, openai.APIStatusError):
            detail = self._scrub(_server_message(e))
            code = e.status_code
            hint = (
                "; if the server does not support JSON-schema output, use "
                "--response-format json_object or text"
                if code in (400, 422)
                else f" after {tries}"
                if code >= 500
                else ""
            )
            return EndpointError(f"{where} answered {code}: {detail or 'no message'}{hint}")
        return EndpointError(f"{where} failed: {self._scrub(str(e))}")


def _server_message(e: Any) -> str:
    body = getattr(e, "body", None)
    if isinstance(body, Mapping):
        err = body.get("error", body)
        if isinstance(err, Mapping) and isinstance(err.get("message"), str):
            return str(err["message"])
        if isinstance(err, str):
            return err
    return str(getattr(e, "message", "") or "")
