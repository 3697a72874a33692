"""One constrained sampler: per-step token masks over a KV-cache decoder, on numpy.

:func:`decode` runs a batch of sequences in lock step. At every step a :class:`Policy` (what a
path knows about its sequences: grammar, domains, rules, conditions) says which block of the
vocabulary comes next and which of its tokens each sequence may take; the token is drawn from
the model's distribution restricted to them (Gumbel-max: the same draw as sampling from the
renormalised softmax), and the policy turns it into the next input. Finished sequences are
dropped from the batch as they end.

Decoders: :class:`~._infer.NumpyDecoder` runs the GPT core on numpy with a preallocated
key/value buffer (no torch import); :class:`HFDecoder` runs a pretrained ``transformers``
causal LM with its own cache (the base-model text path, which keeps every row until all are
done).
"""

from __future__ import annotations

from typing import Any, Protocol

import numpy as np

__all__ = ["Decoder", "HFDecoder", "Policy", "decode", "draw"]


class Decoder(Protocol):
    """Incremental forward passes over a batch of sequences."""

    rows: int

    def step(
        self, ids: np.ndarray, types: np.ndarray | None, rows: np.ndarray | None = None
    ) -> Any:
        """Feed ``ids`` (rows × positions) for every row, or for ``rows``; the last state."""

    def logits(self, h: Any, lo: int, hi: int) -> np.ndarray:
        """Logits of the vocabulary block ``lo:hi`` from a state ``step`` returned."""

    def select(self, rows: np.ndarray) -> np.ndarray | None:
        """Keep only ``rows``; where each of them now is (``None``: in order from 0)."""


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
        self, ids: np.ndarray, types: np.ndarray | None, rows: np.ndarray | None = None
    ) -> np.ndarray:
        """Feed ``ids`` (every row); the last position's logits over the whole vocabulary."""
        import torch

        if rows is not None:
            raise ValueError("HFDecoder keeps every row until all are done")
        device = next(self.model.parameters()).device  # an accelerator while training
        with torch.inference_mode():
            out = self.model(
                input_ids=torch.from_numpy(ids).to(device),
                use_cache=True,
                **{self.cache_arg: self.past},
            )
        self.past = out["cache"] if "cache" in out else out.past_key_values
        return out.logits[:, -1].float().cpu().numpy()

    def logits(self, h: np.ndarray, lo: int, hi: int) -> np.ndarray:
        """The block ``lo:hi`` of the logits ``step`` returned."""
        return h[:, lo:hi]

    def select(self, rows: np.ndarray) -> None:
        """Not supported: finished rows stay in the batch."""
        raise ValueError("HFDecoder keeps every row until all are done")


class Policy(Protocol):
    """What a path decides at each step of :func:`decode` (arrays cover the live rows)."""

    def prefix(self) -> tuple[np.ndarray, np.ndarray | None]:
        """Input ids and token types fed before the first step, (rows, length)."""

    def block(self) -> tuple[int, int]:
        """The vocabulary block the next token comes from."""

    def allowed(self, logits: np.ndarray) -> np.ndarray:
        """Per live row, the tokens of the block it may take (bool, shaped like ``logits``)."""

    # A policy may also have ``adjust(logits) -> logits``, called before ``allowed``: offsets
    # on the (temperature-scaled) logits of the live rows, which it may change in place.

    def advance(
        self, pick: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray | None, np.ndarray | None] | None:
        """Record the picked tokens and say what comes next.

        Returns the next inputs and token types, (rows, 1), and which rows go on (``None``:
        all); or ``None`` when every row is done.
        """

    def select(self, keep: np.ndarray) -> None:
        """Only the live rows at positions ``keep`` go on."""


#: Finished rows leave the decoder's cache when fewer than this share of its rows are live.
_COMPACT = 0.95

#: Added to the scores of tokens a row may not take (finite, so no masked writes are needed).
_BARRED = np.float32(-1e30)


def draw(logits: np.ndarray, allowed: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """One token per row from softmax(logits) restricted to ``allowed`` (Gumbel-max).

    The Gumbel noise is drawn in single precision (uniforms on a 2^-24 grid: the noise is cut
    off above 16.6, an event of probability 6e-8 per token) and the barred tokens get a score
    of -1e30 by arithmetic rather than a masked write: on a step of 1,024 timelines over a
    vocabulary of 1,000 this takes a third of the time of double precision with ``np.where``.
    """
    g = rng.random(logits.shape, dtype=np.float32)
    np.maximum(g, np.float32(1e-30), out=g)
    np.log(g, out=g)
    np.negative(g, out=g)
    np.log(g, out=g)  # g = -Gumbel noise
    np.subtract(logits, g, out=g, casting="unsafe")
    barred = np.asarray(allowed, bool).view(np.uint8).astype(np.float32)
    barred -= 1  # 0 where allowed, -1 where not
    barred *= -_BARRED  # 0 or -1e30
    g += barred
    return np.argmax(g, axis=1)


def decode(
    decoder: Decoder,
    policy: Policy,
    *,
    rng: np.random.Generator,
    max_steps: int,
    temperature: float = 1.0,
) -> None:
    """Decode until ``policy`` says every row is done (or ``max_steps``); results stay in it."""
    ids, types = policy.prefix()
    h = decoder.step(ids, types)
    buf: np.ndarray | None = None  # buffer row of each live row (None: all, in order)
    adjust = getattr(policy, "adjust", None)
    for _ in range(max_steps):
        lo, hi = policy.block()
        logits = decoder.logits(h, lo, hi)
        if temperature != 1.0:
            logits = logits / temperature
        if adjust is not None:
            logits = adjust(logits)
        pick = draw(logits, policy.allowed(logits), rng)
        nxt = policy.advance(pick)
        if nxt is None:
            return
        ids, types, keep = nxt
        if keep is not None:
            sel = np.flatnonzero(keep)
            policy.select(sel)
            ids = ids[sel]
            types = types[sel] if types is not None else None
            buf = (np.arange(decoder.rows) if buf is None else buf)[sel]
            if len(buf) < _COMPACT * decoder.rows:  # drop finished rows from the cache
                buf = decoder.select(buf)
        h = decoder.step(ids, types, rows=buf)
