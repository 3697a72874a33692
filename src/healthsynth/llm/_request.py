"""What goes to a chat-completions server, what comes back, and the running totals."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

__all__ = ["ChatReply", "ChatRequest", "Usage"]


@dataclass(frozen=True)
class ChatRequest:
    """One chat-completions request and what it carries.

    Parameters
    ----------
    messages
        The chat messages (``{"role": ..., "content": ...}``).
    max_tokens
        The most completion tokens the reply may use (sent to the server, which enforces it).
    temperature, seed
        Sampling settings; ``seed`` is sent only when the client's ``send_seed`` is on.
    json_schema
        When the reply must be JSON, its schema (sent as the response format the client uses).
    real_rows, columns
        How many real records the prompt holds and which columns of them: what the PHI gate
        checks and the audit log records.
    schema_columns
        Columns whose description (type, range or categories, missing share) the prompt holds,
        for the audit log.
    derived
        Column -> what the prompt (or the response format) carries that was computed from the
        real rows, in words (``"categories"``, ``"widened range; missing share"`` ...). The PHI
        gate treats it like real rows; the audit log records it.
    purpose
        A word for the audit log (``generate``, ``repair``).
    """

    messages: Sequence[Mapping[str, str]]
    max_tokens: int
    temperature: float = 1.0
    seed: int | None = None
    json_schema: Mapping[str, Any] | None = None
    real_rows: int = 0
    columns: Sequence[str] = ()
    schema_columns: Sequence[str] = ()
    derived: Mapping[str, str] = field(default_factory=dict)
    purpose: str = "generate"

    def prompt_chars(self) -> int:
        """Characters in all messages."""
        return sum(len(m.get("content", "")) for m in self.messages)

    def prompt_hash(self) -> str:
        """SHA-256 of the messages (what the audit log records instead of the prompt)."""
        text = json.dumps(list(self.messages), sort_keys=True, ensure_ascii=False)
        return hashlib.sha256(text.encode("utf-8")).hexdigest()


@dataclass(frozen=True)
class ChatReply:
    """The text of a reply and what it cost."""

    text: str
    finish_reason: str
    tokens_in: int
    tokens_out: int
    seconds: float
    cached: bool = False
    #: False when the server sent no ``usage`` and the token counts are estimates
    usage_reported: bool = True

    @property
    def truncated(self) -> bool:
        """Whether the reply stopped at ``max_tokens``."""
        return self.finish_reason == "length"


@dataclass
class Usage:
    """What a client has spent so far."""

    requests: int = 0
    cached_requests: int = 0
    failed_requests: int = 0
    http_attempts: int = 0
    tokens_in: int = 0
    tokens_out: int = 0
    llm_seconds: float = 0.0
    cost_usd: float | None = None
    estimated_usage: int = 0
    statuses: dict[str, int] = field(default_factory=dict)

    def to_record(self) -> dict[str, Any]:
        """JSON-ready figures (the keys the cost metric reads)."""
        return {
            "requests": self.requests,
            "cached_requests": self.cached_requests,
            "failed_requests": self.failed_requests,
            "http_attempts": self.http_attempts,
            "tokens_in": self.tokens_in,
            "tokens_out": self.tokens_out,
            "llm_seconds": round(self.llm_seconds, 3),
            "cost_usd": None if self.cost_usd is None else round(self.cost_usd, 6),
            "requests_without_usage": self.estimated_usage,
            "http_statuses": dict(sorted(self.statuses.items())),
        }
