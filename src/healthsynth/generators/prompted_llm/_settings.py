"""The prompted-llm generator's settings: their checks, and the chat client they configure."""

from __future__ import annotations

from typing import Any

import numpy as np

from healthsynth.errors import ParameterError
from healthsynth.generators.prompted_llm._prompts import PROMPTS

__all__ = ["CALL_ONLY_SETTINGS", "DEFAULT_AUDIT_LOG", "check_endpoint", "check_settings", "client"]

#: where requests are logged unless ``audit_log`` says otherwise (relative to the working folder)
DEFAULT_AUDIT_LOG = "healthsynth-llm-audit.jsonl"
#: settings that decide where data go or what goes with them: taken from the call in use, never
#: from a model folder (``endpoint`` is kept from a folder only when it is on this machine)
CALL_ONLY_SETTINGS = ("endpoint", "allow_remote_phi", "api_key_env", "audit_log", "cache_dir")


def check_endpoint(gen: Any) -> None:
    """Refuse to go on without an endpoint, explaining a loaded folder's remote endpoint."""
    if gen.endpoint:
        return
    fitted = getattr(gen, "fitted_endpoint_", None)
    if fitted:
        from healthsynth.llm._gate import check_endpoint, redact_url

        try:
            check_endpoint(fitted)
            why = "which is not this machine, and a model folder alone never sends data off it"
        except ParameterError:
            why = "which is not a plain URL without credentials, so it is never used"
        raise ParameterError(
            f"this model was fitted against {redact_url(fitted)}, {why}; give the endpoint "
            "again (endpoint=..., --endpoint URL), with allow_remote_phi=True "
            "(--allow-remote-phi) if your data governance allows it"
        )
    raise ParameterError(
        "prompted-llm needs the LLM endpoint's base URL (endpoint=..., --endpoint URL)"
    )


def check_settings(gen: Any, n_rows: int) -> None:
    """Check the generator's settings against data of ``n_rows`` rows."""
    check_endpoint(gen)
    if not gen.llm_model:
        raise ParameterError("prompted-llm needs the model name (llm_model=..., --llm-model)")
    if gen.prompt not in PROMPTS:
        raise ParameterError(f"prompt must be one of {', '.join(PROMPTS)}; got {gen.prompt!r}")
    for name in ("examples", "rows_per_request", "max_requests"):
        v = getattr(gen, name)
        if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < 1:
            raise ParameterError(f"{name} must be a whole number >= 1; got {v!r}")
    if gen.max_tokens is not None and (
        isinstance(gen.max_tokens, bool)
        or not isinstance(gen.max_tokens, (int, np.integer))
        or gen.max_tokens < 16
    ):
        raise ParameterError(f"max_tokens must be a whole number >= 16; got {gen.max_tokens!r}")
    if (
        isinstance(gen.temperature, bool)
        or not isinstance(gen.temperature, (int, float))
        or not (0 <= gen.temperature <= 2)
    ):
        raise ParameterError(f"temperature must be between 0 and 2; got {gen.temperature!r}")
    w = gen.widen
    if isinstance(w, bool) or not isinstance(w, (int, float)) or not (0 <= w <= 100):
        raise ParameterError(f"widen must be a number from 0 to 100; got {w!r}")
    for name in ("reveal_ranges", "allow_remote_phi"):
        if not isinstance(getattr(gen, name), bool):
            raise ParameterError(f"{name} must be True or False; got {getattr(gen, name)!r}")
    if gen.prompt != "zero-shot" and gen.examples > n_rows:
        raise ParameterError(
            f"examples ({gen.examples}) is more than the {n_rows} rows of the data; give "
            f"--examples {n_rows} or fewer"
        )


def client(gen: Any) -> Any:
    """The chat client the generator's settings describe (checks the URL, budget and prices)."""
    from healthsynth.llm import ChatClient

    return ChatClient(
        endpoint=str(gen.endpoint),
        model=str(gen.llm_model),
        api_key_env=gen.api_key_env,
        timeout=gen.timeout,
        max_retries=gen.max_retries,
        concurrency=gen.concurrency,
        response_format=gen.response_format,
        send_seed=gen.send_seed,
        cache_dir=gen.cache_dir,
        audit_log=gen.audit_log,
        prices=gen.prices,
        budget_tokens=gen.budget_tokens,
        budget_usd=gen.budget_usd,
        allow_remote_phi=gen.allow_remote_phi,
    )
