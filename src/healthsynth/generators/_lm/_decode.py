"""One constrained sampler: a KV-cache decoder, per-step token masks, and the decoding loop.

:func:`decode` runs a batch of sequences in lock step. At every step a :class:`Policy` (what a
path knows about its sequences: grammar, domains, rules, conditions) says which block of the
vocabulary comes next and which of its tokens each sequence may take; the token is drawn from
the model's distribution restricted to them (Gumbel-max: the same draw as sampling from the
renormalised softmax), and the policy turns it into the next input. Finished sequences are
dropped from the batch as they end.

:class:`GPTDecoder` runs the GPT core with a key/value buffer preallocated for the longest
sequence: keys and values are written in place, and finished rows are dropped from the buffer
only now and then (rows that finished in between are computed and ignored), so a step never
copies the cache. :class:`HFDecoder` runs any ``transformers`` causal LM with its own cache
(the pretrained base-model path; it keeps every row until all are done).
"""

from __future__ import annotations

from typing import Any, Protocol

import torch
from torch.nn import functional as F  # noqa: N812

__all__ = ["GPTDecoder", "HFDecoder", "Policy", "decode", "draw"]


class GPTDecoder:
    """Incremental forward passes of a :class:`~._model.GPT` over ``rows`` sequences."""

    def __init__(self, model: Any, rows: int, max_len: int) -> None:
        t = model.transformer
        self.wte, self.wpe, self.blocks, self.ln_f = t.wte, t.wpe, t.h, t.ln_f
        self.head = model.lm_head.weight
        self.n_head = model.config.n_head
        self.d = model.config.n_embd
        self.hd = self.d // self.n_head
        self.rows = rows
        shape = (len(self.blocks), rows, self.n_head, max_len, self.hd)
        self.k = torch.zeros(shape, dtype=self.wte.weight.dtype)
        self.v = torch.zeros(shape, dtype=self.wte.weight.dtype)
        self.pos = 0

    def step(
        self, ids: torch.Tensor, types: torch.Tensor | None, rows: torch.Tensor | None = None
    ) -> torch.Tensor:
        """Feed ``ids`` (for every buffer row, or for ``rows``); the last hidden state per row."""
        if rows is not None and len(rows) != self.rows:
            full_ids = torch.zeros((self.rows, ids.shape[1]), dtype=torch.long)
            full_ids[rows] = ids
            ids = full_ids
            if types is not None:
                full_types = torch.zeros((self.rows, ids.shape[1]), dtype=torch.long)
                full_types[rows] = types
                types = full_types
        b, t = ids.shape
        p0, p1 = self.pos, self.pos + t
        x = self.wte(ids) + self.wpe.weight[p0:p1][None]
        if types is not None:
            x = x + self.wte(types)
        for layer, block in enumerate(self.blocks):
            q, k, v = block.attn.heads(block.ln_1(x))
            self.k[layer, :, :, p0:p1] = k
            self.v[layer, :, :, p0:p1] = v
            o = F.scaled_dot_product_attention(
                q, self.k[layer, :, :, :p1], self.v[layer, :, :, :p1], is_causal=t > 1
            )
            x = x + block.attn.out(o)
            x = x + block.mlp(block.ln_2(x))
        self.pos = p1
        h = self.ln_f(x[:, -1])
        return h if rows is None or len(rows) == self.rows else h[rows]

    def logits(self, h: torch.Tensor, lo: int, hi: int) -> torch.Tensor:
        """Logits of the vocabulary block ``lo:hi`` only."""
        return h @ self.head[lo:hi].T

    def select(self, rows: torch.Tensor) -> None:
        """Keep only ``rows`` of the buffer."""
        self.k = self.k[:, rows].contiguous()
        self.v = self.v[:, rows].contiguous()
        self.rows = len(rows)


class HFDecoder:
    """Incremental forward passes of a ``transformers`` causal LM, with its own KV cache."""

    def __init__(self, model: Any, rows: int) -> None:
        import inspect

        self.model = model
        self.rows = rows
        self.past: Any = None
        params = inspect.signature(model.forward).parameters
        # newer transformers name the cache argument ``cache``
        self.cache_arg = "cache" if "cache" in params else "past_key_values"

    def step(
        self, ids: torch.Tensor, types: torch.Tensor | None, rows: torch.Tensor | None = None
    ) -> torch.Tensor:
        """Feed ``ids`` (every row); the last position's logits over the whole vocabulary."""
        if rows is not None:
            raise ValueError("HFDecoder keeps every row until all are done")
        out = self.model(input_ids=ids, use_cache=True, **{self.cache_arg: self.past})
        self.past = out["cache"] if "cache" in out else out.past_key_values
        return out.logits[:, -1]

    def logits(self, h: torch.Tensor, lo: int, hi: int) -> torch.Tensor:
        """The block ``lo:hi`` of the logits ``step`` returned."""
        return h[:, lo:hi]

    def select(self, rows: torch.Tensor) -> None:
        """Not supported: finished rows stay in the batch."""
        raise ValueError("HFDecoder keeps every row until all are done")


class Policy(Protocol):
    """What a path decides at each step of :func:`decode` (all tensors cover live rows)."""

    def prefix(self) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Input ids and token types fed before the first step, (rows, length)."""

    def block(self) -> tuple[int, int]:
        """The vocabulary block the next token comes from."""

    def allowed(self, logits: torch.Tensor) -> torch.Tensor:
        """Per live row, the tokens of the block it may take (bool, shaped like ``logits``)."""

    def advance(
        self, pick: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor | None, torch.Tensor | None] | None:
        """Record the picked tokens and say what comes next.

        Returns the next inputs and token types, (rows, 1), and which rows go on (``None``:
        all); or ``None`` when every row is done.
        """

    def select(self, keep: torch.Tensor) -> None:
        """Only the live rows at positions ``keep`` go on."""


def draw(logits: torch.Tensor, allowed: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """One token per row from softmax(logits) restricted to ``allowed`` (Gumbel-max)."""
    u = torch.rand(logits.shape, generator=generator).clamp_(min=1e-12)
    masked = logits.masked_fill(~allowed, float("-inf"))
    return torch.argmax(masked - torch.log(-torch.log(u)), dim=1)


@torch.inference_mode()
def decode(
    decoder: GPTDecoder | HFDecoder,
    policy: Policy,
    *,
    generator: torch.Generator,
    max_steps: int,
    temperature: float = 1.0,
) -> None:
    """Decode until ``policy`` says every row is done (or ``max_steps``); results stay in it."""
    ids, types = policy.prefix()
    h = decoder.step(ids, types)
    buf: torch.Tensor | None = None  # buffer row of each live row (None: all, in order)
    for _ in range(max_steps):
        lo, hi = policy.block()
        logits = decoder.logits(h, lo, hi).float()
        if temperature != 1.0:
            logits = logits / temperature
        pick = draw(logits, policy.allowed(logits), generator)
        nxt = policy.advance(pick)
        if nxt is None:
            return
        ids, types, keep = nxt
        if keep is not None:
            sel = torch.nonzero(keep).squeeze(1)
            policy.select(sel)
            ids = ids[sel]
            types = types[sel] if types is not None else None
            buf = (torch.arange(decoder.rows) if buf is None else buf)[sel]
            if len(buf) < 0.7 * decoder.rows:  # drop finished rows from the cache
                decoder.select(buf)
                buf = None
        h = decoder.step(ids, types, rows=buf)
