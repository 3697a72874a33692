"""Per-example log-likelihood under a GPT core: what a model thinks of given rows.

Privacy audits rank records by how likely a model finds them (canary exposure, Carlini et al.
2019): a record the model memorised is far more likely than others like it. The score is the
model's own training objective, summed instead of averaged: each slot's token is predicted from
the slots before it, its probability taken within the slot's vocabulary block, in the table's
column order (no conditioning). Runs on the numpy model, so a loaded model needs no torch.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from healthsynth.generators._lm._infer import as_numpy
from healthsynth.generators._lm._vocab import BOS

__all__ = ["slot_log_likelihood"]


def slot_log_likelihood(
    model: Any, codec: Any, local: np.ndarray, *, batch: int = 1024
) -> np.ndarray:
    """Log-likelihood in nats of rows of local slot tokens, one figure per row.

    Parameters
    ----------
    model
        A GPT core (torch) or its :class:`~._infer.NumpyGPT`.
    codec
        The slot codec the model was trained with (``offset``, ``slot_size``, ``marker``).
    local
        (rows, slots) local tokens in canonical slot order, as ``codec.encode`` gives them.
    batch
        Rows scored at once.
    """
    gpt = as_numpy(model)
    n, slots = local.shape
    out = np.zeros(n)
    for r0 in range(0, n, batch):
        part = local[r0 : r0 + batch]
        m = len(part)
        decoder = gpt.decoder(m, slots + 1)
        ids = np.full((m, 1), BOS, np.int64)
        for s in range(slots):
            lo = int(codec.offset[s])
            hi = lo + int(codec.slot_size[s])
            types = np.full((m, 1), int(codec.marker[s]), np.int64)
            logits = decoder.logits(decoder.step(ids, types), lo, hi).astype(np.float64)
            top = logits.max(axis=1)
            norm = np.log(np.exp(logits - top[:, None]).sum(axis=1)) + top
            out[r0 : r0 + m] += logits[np.arange(m), part[:, s]] - norm
            ids = (part[:, s] + lo)[:, None].astype(np.int64)
    return out
