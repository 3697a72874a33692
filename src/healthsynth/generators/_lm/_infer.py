"""The GPT core for sampling, on numpy: the same weights and computation, no torch needed.

Sampling a saved model reads ``config.json`` and ``model.safetensors`` into numpy arrays and
decodes with :class:`NumpyDecoder`, so ``healthsynth sample`` starts without importing torch
(which takes longer than the whole sample of a small table). After a fit, the torch model's
weights are viewed as numpy arrays (no copy) the same way. Training stays on torch
(:mod:`._model`); a test checks that both compute the same logits.
"""

from __future__ import annotations

import functools
import math
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import numpy as np

from healthsynth.generators._lm._alloc import keep_freed_memory
from healthsynth.generators._lm._config import ACTIVATIONS, GPTConfig

__all__ = ["CHUNK", "SHORT_CHUNK", "NumpyDecoder", "NumpyGPT", "as_numpy", "n_parameters"]

#: Rows computed together in a decoding step (their activations fit in a core's cache).
CHUNK = 256
#: Rows per chunk for short sequences (a table's slots): fewer, larger array operations, so
#: less time in numpy's per-call overhead and two threads wait less on each other for the
#: interpreter lock (pbc's 19 columns, two threads: 2,150 → 2,510 rows/s in one process;
#: docs/benchmark-results/engine.md).
SHORT_CHUNK = 1024
#: Below twice this many rows, a step is one chunk (threads would cost more than they save).
MIN_CHUNK = 16

# Abramowitz & Stegun 7.1.26: erf to within 1.5e-7 (float32 resolution), without scipy
_P, _A = 0.3275911, (0.254829592, -0.284496736, 1.421413741, -1.453152027, 1.061405429)


def _erf(x: np.ndarray) -> np.ndarray:
    """erf(x), elementwise (a new array)."""
    a = np.abs(x)
    t = a * _P
    t += 1.0
    np.reciprocal(t, out=t)
    poly = t * _A[4]
    for c in (_A[3], _A[2], _A[1], _A[0]):
        poly += c
        poly *= t
    np.multiply(a, a, out=a)
    np.negative(a, out=a)
    np.exp(a, out=a)
    poly *= a  # poly * exp(-x^2)
    np.subtract(1.0, poly, out=poly)
    return np.copysign(poly, x, out=poly)


def _act(x: np.ndarray, kind: str) -> np.ndarray:
    """The MLP activation, in place on ``x`` where it can be."""
    if kind == "relu":
        return np.maximum(x, 0, out=x)
    if kind == "tanh":
        inner = x * x
        inner *= 0.044715
        inner += 1.0
        inner *= x
        inner *= math.sqrt(2 / math.pi)
        np.tanh(inner, out=inner)
    else:
        inner = _erf(x * (1 / math.sqrt(2)))
    inner += 1.0
    inner *= 0.5
    x *= inner
    return x


def _layer_norm(x: np.ndarray, w: np.ndarray, b: np.ndarray, eps: float) -> np.ndarray:
    xc = x - x.mean(-1, keepdims=True)
    var = np.einsum("ij,ij->i", xc, xc)[:, None]
    var *= 1.0 / x.shape[-1]
    var += eps
    np.sqrt(var, out=var)
    xc /= var
    xc *= w
    xc += b
    return xc


class NumpyGPT:
    """A GPT core's weights as numpy arrays (GPT-2 names), for sampling.

    Parameters
    ----------
    config
        The model's size.
    weights
        Arrays by GPT-2 name (``lm_head.weight`` may be left out: it is ``transformer.wte``).
    """

    def __init__(self, config: GPTConfig, weights: dict[str, np.ndarray]) -> None:
        self.config = config
        self.w = {k: np.asarray(v, np.float32) for k, v in weights.items() if k != "lm_head.weight"}

    @classmethod
    def from_torch(cls, model: Any) -> NumpyGPT:
        """View a torch :class:`~._model.GPT`'s current weights (shared memory, no copy)."""
        # .cpu(): a model still training on an accelerator is sampled by the privacy check
        weights = {k: v.detach().cpu().numpy() for k, v in model.state_dict().items()}
        return cls(model.config, weights)

    def n_parameters(self) -> int:
        """Number of weights (the tied head counted once)."""
        return int(sum(v.size for v in self.w.values()))

    def decoder(
        self, rows: int, max_len: int, *, workers: int = 1, chunk: int = CHUNK
    ) -> NumpyDecoder:
        """A decoder over ``rows`` sequences of at most ``max_len`` positions.

        ``workers`` threads compute the row chunks of a step at once (run them with one BLAS
        thread each, :func:`~._threads.compute_threads`); the results do not depend on it.
        ``chunk`` is the rows computed together (see :func:`_chunk_starts`).
        """
        return NumpyDecoder(self, rows, max_len, workers=workers, chunk=chunk)


def n_parameters(model: Any) -> int:
    """Weights of a GPT (torch or numpy) or of any torch module."""
    if hasattr(model, "n_parameters"):
        return int(model.n_parameters())
    return int(sum(p.numel() for p in model.parameters()))


def as_numpy(model: Any) -> NumpyGPT:
    """``model`` for sampling: a :class:`NumpyGPT` as it is, a torch GPT viewed as one."""
    return model if isinstance(model, NumpyGPT) else NumpyGPT.from_torch(model)


class NumpyDecoder:
    """Incremental forward passes with a key/value buffer preallocated for ``max_len``.

    Keys and values are written in place; finished rows are dropped only now and then
    (:meth:`select`, which moves the live rows' filled positions to the front of the same
    buffer), rows that finished in between are computed and ignored, so a step never copies
    the cache. With ``workers`` > 1 the chunks of rows of a step run on that many threads
    (numpy releases the interpreter lock in its array work); each chunk's arithmetic is the
    same either way.
    """

    def __init__(
        self, gpt: NumpyGPT, rows: int, max_len: int, *, workers: int = 1, chunk: int = CHUNK
    ) -> None:
        keep_freed_memory()
        c = gpt.config
        self.w, self.c = gpt.w, c
        self.kind = ACTIVATIONS[c.activation_function]
        self.hd = c.n_embd // c.n_head
        self.rows = rows
        # position-major: a step writes one contiguous block per layer (its rows' keys)
        shape = (c.n_layer, max_len, rows, c.n_head, self.hd)
        self.k = np.zeros(shape, np.float32)
        self.v = np.zeros(shape, np.float32)
        self.pos = 0
        self.head = self.w["transformer.wte.weight"]
        self.scale = np.float32(1 / math.sqrt(self.hd))
        self.workers = max(1, int(workers))
        self.chunk = max(2 * MIN_CHUNK, int(chunk))

    def step(
        self, ids: np.ndarray, types: np.ndarray | None, rows: np.ndarray | None = None
    ) -> np.ndarray:
        """Feed ``ids`` (for every buffer row, or for ``rows``); the last hidden state per row.

        The rows are computed in chunks of :data:`CHUNK`, so that each chunk's activations stay
        in the processor's cache (several times faster than whole-batch passes).
        """
        if rows is not None:  # the live rows, in the buffer's places
            full = np.zeros((self.rows, ids.shape[1]), np.int64)
            full[rows] = ids
            ids = full
            if types is not None:
                full_types = np.zeros((self.rows, ids.shape[1]), np.int64)
                full_types[rows] = types
                types = full_types
        p0, p1 = self.pos, self.pos + ids.shape[1]
        h = np.empty((self.rows, self.c.n_embd), np.float32)

        starts = _chunk_starts(self.rows, self.chunk)

        def chunk(r0: int) -> None:
            r1 = min(r0 + starts.step, self.rows)
            chunk_types = None if types is None else types[r0:r1]
            h[r0:r1] = self._forward(ids[r0:r1], chunk_types, r0, r1, p0, p1)

        if self.workers > 1 and len(starts) > 1:
            list(_pool(self.workers).map(chunk, starts))
        else:
            for r0 in starts:
                chunk(r0)
        self.pos = p1
        return h if rows is None else h[rows]

    def _forward(
        self, ids: np.ndarray, types: np.ndarray | None, r0: int, r1: int, p0: int, p1: int
    ) -> np.ndarray:
        """Positions ``p0:p1`` of buffer rows ``r0:r1``; their last hidden states."""
        w, c, d, nh, hd = self.w, self.c, self.c.n_embd, self.c.n_head, self.hd
        eps = c.layer_norm_epsilon
        b, t = ids.shape
        # (row, position) pairs flattened: the linear layers are plain matrix products
        x = (self.head[ids] + w["transformer.wpe.weight"][p0:p1][None]).reshape(b * t, d)
        if types is not None:
            x += self.head[types].reshape(b * t, d)
        mask = None
        if t > 1:  # a prefix: causal within it
            mask = np.triu(np.full((t, p1), -np.inf, np.float32), k=p0 + 1)
        for i in range(c.n_layer):
            p = f"transformer.h.{i}."
            a = _layer_norm(x, w[p + "ln_1.weight"], w[p + "ln_1.bias"], eps)
            qkv = a @ w[p + "attn.c_attn.weight"]
            qkv += w[p + "attn.c_attn.bias"]
            qkv = qkv.reshape(b, t, 3, nh, hd)
            q = qkv[:, :, 0].transpose(0, 2, 1, 3)  # (rows, heads, t, head width)
            keys, values = self.k[i, :, r0:r1], self.v[i, :, r0:r1]  # (position, row, ...)
            keys[p0:p1] = qkv[:, :, 1].transpose(1, 0, 2, 3)
            values[p0:p1] = qkv[:, :, 2].transpose(1, 0, 2, 3)
            s = q @ keys[:p1].transpose(1, 2, 3, 0)
            s *= self.scale
            if mask is not None:
                s += mask
            s -= s.max(-1, keepdims=True)
            np.exp(s, out=s)
            s /= s.sum(-1, keepdims=True)
            o = (s @ values[:p1].transpose(1, 2, 0, 3)).transpose(0, 2, 1, 3).reshape(b * t, d)
            x += o @ w[p + "attn.c_proj.weight"]
            x += w[p + "attn.c_proj.bias"]
            m = _layer_norm(x, w[p + "ln_2.weight"], w[p + "ln_2.bias"], eps)
            m = m @ w[p + "mlp.c_fc.weight"]
            m += w[p + "mlp.c_fc.bias"]
            x += _act(m, self.kind) @ w[p + "mlp.c_proj.weight"]
            x += w[p + "mlp.c_proj.bias"]
        last = x.reshape(b, t, d)[:, -1]
        return _layer_norm(last, w["transformer.ln_f.weight"], w["transformer.ln_f.bias"], eps)

    def logits(self, h: np.ndarray, lo: int, hi: int) -> np.ndarray:
        """Logits of the vocabulary block ``lo:hi`` only."""
        return h @ self.head[lo:hi].T

    def select(self, rows: np.ndarray) -> np.ndarray | None:
        """Keep only ``rows`` of the buffer; where each of them now is (``None``: 0, 1, ...).

        The buffer shrinks to ``len(rows)`` rows: live rows beyond that move into the places of
        finished rows below it (their filled positions only), the others stay where they are.
        """
        rows = np.asarray(rows)
        m, p = len(rows), self.pos
        high = np.flatnonzero(rows >= m)  # live rows that must move down
        if len(high):
            holes = np.setdiff1d(np.arange(m), rows[rows < m], assume_unique=True)
            src = rows[high]
            self.k[:, :p, holes] = self.k[:, :p, src]
            self.v[:, :p, holes] = self.v[:, :p, src]
            rows = rows.copy()
            rows[high] = holes
        self.k, self.v = self.k[:, :, :m], self.v[:, :, :m]
        self.rows = m
        return None if np.array_equal(rows, np.arange(m)) else rows


def _chunk_starts(rows: int, chunk: int = CHUNK) -> range:
    """First rows of the chunks of a step (a range whose step is the chunk size).

    ``chunk`` rows each, or two halves of a batch smaller than two chunks (so that the long
    tail of a batch, when only a few sequences are still running, is shared by two threads
    too). It depends on ``rows`` and ``chunk`` only, never on the number of threads.
    """
    if rows >= 2 * chunk:
        return range(0, rows, chunk)
    if rows >= 2 * MIN_CHUNK:
        return range(0, rows, -(-rows // 2))
    return range(0, rows, max(rows, 1))


@functools.cache
def _pool(workers: int) -> ThreadPoolExecutor:
    """Threads for the row chunks of decoding steps (one pool per size, kept for reuse)."""
    return ThreadPoolExecutor(workers, thread_name_prefix="healthsynth-decode")
