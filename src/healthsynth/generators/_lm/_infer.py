"""The GPT core for sampling, on numpy: the same weights and computation, no torch needed.

Sampling a saved model reads ``config.json`` and ``model.safetensors`` into numpy arrays and
decodes with :class:`NumpyDecoder`, so ``healthsynth sample`` starts without importing torch
(which takes longer than the whole sample of a small table). After a fit, the torch model's
weights are viewed as numpy arrays (no copy) the same way. Training stays on torch
(:mod:`._model`); a test checks that both compute the same logits.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from healthsynth.generators._lm._config import ACTIVATIONS, GPTConfig

__all__ = ["NumpyDecoder", "NumpyGPT", "as_numpy", "n_parameters"]

# Abramowitz & Stegun 7.1.26: erf to within 1.5e-7 (float32 resolution), without scipy
_P, _A = 0.3275911, (0.254829592, -0.284496736, 1.421413741, -1.453152027, 1.061405429)


def _erf(x: np.ndarray) -> np.ndarray:
    t = 1.0 / (1.0 + _P * np.abs(x))
    poly = t * (_A[0] + t * (_A[1] + t * (_A[2] + t * (_A[3] + t * _A[4]))))
    return np.sign(x) * (1.0 - poly * np.exp(-x * x))


def _act(x: np.ndarray, kind: str) -> np.ndarray:
    if kind == "relu":
        return np.maximum(x, 0)
    if kind == "tanh":
        return 0.5 * x * (1 + np.tanh(math.sqrt(2 / math.pi) * (x + 0.044715 * x**3)))
    return 0.5 * x * (1 + _erf(x * (1 / math.sqrt(2))))


def _layer_norm(x: np.ndarray, w: np.ndarray, b: np.ndarray, eps: float) -> np.ndarray:
    mu = x.mean(-1, keepdims=True)
    var = ((x - mu) ** 2).mean(-1, keepdims=True)
    return (x - mu) / np.sqrt(var + eps) * w + b


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
        return cls(model.config, {k: v.detach().numpy() for k, v in model.state_dict().items()})

    def n_parameters(self) -> int:
        """Number of weights (the tied head counted once)."""
        return int(sum(v.size for v in self.w.values()))

    def decoder(self, rows: int, max_len: int) -> NumpyDecoder:
        """A decoder over ``rows`` sequences of at most ``max_len`` positions."""
        return NumpyDecoder(self, rows, max_len)


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
    (:meth:`select`), rows that finished in between are computed and ignored, so a step never
    copies the cache.
    """

    def __init__(self, gpt: NumpyGPT, rows: int, max_len: int) -> None:
        c = gpt.config
        self.w, self.c = gpt.w, c
        self.kind = ACTIVATIONS[c.activation_function]
        self.hd = c.n_embd // c.n_head
        self.rows = rows
        shape = (c.n_layer, rows, c.n_head, max_len, self.hd)
        self.k = np.zeros(shape, np.float32)
        self.v = np.zeros(shape, np.float32)
        self.pos = 0
        self.head = self.w["transformer.wte.weight"]

    def _heads(self, x: np.ndarray) -> np.ndarray:
        b, t, _ = x.shape
        return x.reshape(b, t, self.c.n_head, self.hd).transpose(0, 2, 1, 3)

    def step(
        self, ids: np.ndarray, types: np.ndarray | None, rows: np.ndarray | None = None
    ) -> np.ndarray:
        """Feed ``ids`` (for every buffer row, or for ``rows``); the last hidden state per row."""
        if rows is not None and len(rows) != self.rows:
            full = np.zeros((self.rows, ids.shape[1]), np.int64)
            full[rows] = ids
            ids = full
            if types is not None:
                full_types = np.zeros((self.rows, ids.shape[1]), np.int64)
                full_types[rows] = types
                types = full_types
        w, c, d = self.w, self.c, self.c.n_embd
        b, t = ids.shape
        p0, p1 = self.pos, self.pos + t
        x = self.head[ids] + w["transformer.wpe.weight"][p0:p1][None]
        if types is not None:
            x = x + self.head[types]
        scale = np.float32(1 / math.sqrt(self.hd))
        mask = None
        if t > 1:  # a prefix: causal within it
            mask = np.triu(np.full((t, p1), -np.inf, np.float32), k=p0 + 1)
        for i in range(c.n_layer):
            p = f"transformer.h.{i}."
            a = _layer_norm(x, w[p + "ln_1.weight"], w[p + "ln_1.bias"], c.layer_norm_epsilon)
            qkv = a @ w[p + "attn.c_attn.weight"] + w[p + "attn.c_attn.bias"]
            q, k, v = (self._heads(z) for z in np.split(qkv, 3, axis=2))
            self.k[i, :, :, p0:p1] = k
            self.v[i, :, :, p0:p1] = v
            s = (q @ self.k[i, :, :, :p1].transpose(0, 1, 3, 2)) * scale
            if mask is not None:
                s = s + mask
            s = np.exp(s - s.max(-1, keepdims=True))
            o = (s / s.sum(-1, keepdims=True)) @ self.v[i, :, :, :p1]
            o = o.transpose(0, 2, 1, 3).reshape(b, t, d)
            x = x + o @ w[p + "attn.c_proj.weight"] + w[p + "attn.c_proj.bias"]
            m = _layer_norm(x, w[p + "ln_2.weight"], w[p + "ln_2.bias"], c.layer_norm_epsilon)
            m = _act(m @ w[p + "mlp.c_fc.weight"] + w[p + "mlp.c_fc.bias"], self.kind)
            x = x + m @ w[p + "mlp.c_proj.weight"] + w[p + "mlp.c_proj.bias"]
        self.pos = p1
        h = _layer_norm(
            x[:, -1], w["transformer.ln_f.weight"], w["transformer.ln_f.bias"], c.layer_norm_epsilon
        )
        return h if rows is None or len(rows) == self.rows else h[rows]

    def logits(self, h: np.ndarray, lo: int, hi: int) -> np.ndarray:
        """Logits of the vocabulary block ``lo:hi`` only."""
        return h @ self.head[lo:hi].T

    def select(self, rows: np.ndarray) -> None:
        """Keep only ``rows`` of the buffer."""
        self.k = np.ascontiguousarray(self.k[:, rows])
        self.v = np.ascontiguousarray(self.v[:, rows])
        self.rows = len(rows)
