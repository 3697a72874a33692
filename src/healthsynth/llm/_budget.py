"""The client's accounting: token estimates, and the budget reserved before a request is sent.

Each request reserves its most tokens (and dollars) before it is sent, so requests in flight
together can never take the total past the budget; the reply's real counts replace the
reservation.
"""

from __future__ import annotations

import math
from typing import Any

from healthsynth.errors import BudgetError
from healthsynth.llm._request import ChatRequest


class _Accounting:
    """The budget and usage bookkeeping of :class:`~healthsynth.llm.ChatClient`.

    Uses the client's ``usage``, ``price``, ``budget_tokens``, ``budget_usd`` and ``_lock``,
    and the reservations kept in ``_reserved_tokens``, ``_reserved_usd`` and
    ``_tokens_per_char``.
    """

    usage: Any
    price: Any
    budget_tokens: int | None
    budget_usd: float | None
    _lock: Any
    _reserved_tokens: int
    _reserved_usd: float
    _tokens_per_char: float

    def _estimate_in(self, request: ChatRequest) -> int:
        return math.ceil(request.prompt_chars() * self._tokens_per_char) + 8 * len(request.messages)

    def _reserve(self, est_in: int, max_out: int) -> tuple[int, float]:
        need = est_in + max_out
        cost = 0.0
        with self._lock:
            used = self.usage.tokens_in + self.usage.tokens_out + self._reserved_tokens
            if self.budget_tokens is not None and used + need > self.budget_tokens:
                raise BudgetError(
                    f"the token budget ({self.budget_tokens:,}) is spent: {used:,} tokens used "
                    f"or in flight, and the next request may take up to {need:,}; raise "
                    "--budget-tokens to go on"
                )
            if self.budget_usd is not None and self.price is not None:
                cost = self.price.cost(est_in, max_out)
                spent = (self.usage.cost_usd or 0.0) + self._reserved_usd
                if spent + cost > self.budget_usd:
                    raise BudgetError(
                        f"the money budget (${self.budget_usd:g}) is spent: ${spent:.4f} used "
                        f"or in flight, and the next request may cost up to ${cost:.4f}; raise "
                        "--budget-usd to go on"
                    )
                self._reserved_usd += cost
            self._reserved_tokens += need
        return need, cost

    def _release(
        self,
        need: tuple[int, float],
        tokens_in: int,
        tokens_out: int,
        seconds: float,
        *,
        failed: bool,
        reported: bool = True,
        chars: int = 0,
    ) -> None:
        with self._lock:
            self._reserved_tokens -= need[0]
            self._reserved_usd = max(0.0, self._reserved_usd - need[1])
            self.usage.llm_seconds += seconds
            if failed:
                self.usage.failed_requests += 1
                return
            self.usage.requests += 1
            self.usage.tokens_in += tokens_in
            self.usage.tokens_out += tokens_out
            if not reported:
                self.usage.estimated_usage += 1
            if self.price is not None:
                self.usage.cost_usd = (self.usage.cost_usd or 0.0) + self.price.cost(
                    tokens_in, tokens_out
                )
            if reported and chars:
                # later estimates follow what the server counted (10% headroom), never below it
                self._tokens_per_char = max(self._tokens_per_char * 0.5, 1.1 * tokens_in / chars)
