"""The from-scratch path of tabular-lm on the shared engine: its model and its objective.

Rows are slot sequences (see :mod:`._codec` and :mod:`healthsynth.generators._lm._slots`):
training predicts each slot from the slots before it, with the logits restricted to the slot's
vocabulary block, half of the rows with a random subset of columns moved to the front.
Sampling (:func:`healthsynth.generators._lm._slots.sample_slots`) puts the conditioned columns
first and decodes the rest from the model's conditional distribution under the domain,
condition and rule masks.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import torch
from torch.nn import functional as F  # noqa: N812

from healthsynth.generators._lm._model import GPT, build_gpt
from healthsynth.generators._lm._slots import ordered_tokens, random_orders
from healthsynth.generators._lm._train import BatchLoss, on_device
from healthsynth.generators._lm._vocab import BOS
from healthsynth.generators.tabular_lm._codec import TableCodec
from healthsynth.generators.tabular_lm._order import slots_last, target_slots

__all__ = ["TableObjective", "build_model", "slots_last", "target_slots"]


def build_model(
    codec: TableCodec, *, n_embd: int, n_layer: int, n_head: int, dropout: float, seed: int
) -> GPT:
    """A fresh GPT sized for the codec's vocabulary and row length."""
    return build_gpt(
        vocab_size=codec.vocab_size,
        n_positions=codec.n_slots + 1,
        n_embd=n_embd,
        n_layer=n_layer,
        n_head=n_head,
        dropout=dropout,
        seed=seed,
        eos_token_id=BOS,
    )


class TableObjective:
    """Next-slot prediction over rows of slot tokens (an :class:`~._lm._train.Objective`)."""

    def __init__(
        self,
        codec: TableCodec,
        train_tokens: np.ndarray,
        val_tokens: np.ndarray,
        *,
        batch_size: int,
        perm_prob: float,
        target_share: float = 0.0,
        val_batch_size: int = 1024,
    ) -> None:
        self.codec, self.train, self.val = codec, train_tokens, val_tokens
        self.batch_size, self.perm_prob, self.val_batch_size = batch_size, perm_prob, val_batch_size
        self.target_share = target_share
        self.target_slots = target_slots(codec)
        # (slots, vocab) additive mask: 0 inside a slot's block, -inf elsewhere
        mask = torch.full((codec.n_slots, codec.vocab_size), float("-inf"))
        for s in range(codec.n_slots):
            mask[s, codec.offset[s] : codec.offset[s] + codec.slot_size[s]] = 0.0
        self.range_mask = mask

    def steps_per_epoch(self) -> int:
        return math.ceil(len(self.train) / self.batch_size)

    def plan(self, rng: np.random.Generator) -> list[np.ndarray]:
        perm = rng.permutation(len(self.train))
        return [perm[i : i + self.batch_size] for i in range(0, len(perm), self.batch_size)]

    def _loss(self, model: Any, local: np.ndarray, order: np.ndarray) -> torch.Tensor:
        targets = ordered_tokens(self.codec, local, order)
        inputs = np.concatenate([np.full((len(local), 1), BOS), targets[:, :-1]], axis=1)
        ids, markers, slots, labels = on_device(
            model,
            torch.from_numpy(inputs.astype(np.int64)),
            torch.from_numpy(self.codec.marker[order].astype(np.int64)),
            torch.from_numpy(order),
            torch.from_numpy(targets.astype(np.int64)),
        )
        logits = model(ids, markers)
        logits = logits + self._range_mask(logits.device)[slots]
        return F.cross_entropy(logits.reshape(-1, logits.shape[-1]), labels.reshape(-1))

    def _range_mask(self, device: torch.device) -> torch.Tensor:
        if self.range_mask.device != device:  # moved once, when training on an accelerator
            self.range_mask = self.range_mask.to(device)
        return self.range_mask

    def loss(self, model: Any, indices: np.ndarray, rng: np.random.Generator) -> BatchLoss:
        order = random_orders(self.codec, len(indices), self.perm_prob, rng)
        if self.target_share > 0 and len(self.target_slots):
            last = rng.random(len(indices)) < self.target_share
            order[last] = slots_last(order[last], self.target_slots)
        loss = self._loss(model, self.train[indices], order)
        return BatchLoss(loss, float(len(indices)), len(indices) * self.codec.n_slots)

    def example_loss(self, model: Any, indices: np.ndarray, rng: np.random.Generator) -> BatchLoss:
        """The batch loss as the mean over rows of each row's own loss (DP-SGD needs this form).

        Every row has ``n_slots`` target tokens, so the token mean of :meth:`loss` already is it.
        """
        return self.loss(model, indices, rng)

    def validation_loss(self, model: Any) -> float:
        """Mean negative log-likelihood per token (nats), columns in canonical order."""
        total, n = 0.0, len(self.val)
        for i in range(0, n, self.val_batch_size):
            part = self.val[i : i + self.val_batch_size]
            order = np.tile(np.arange(self.codec.n_slots), (len(part), 1))
            total += float(self._loss(model, part, order)) * len(part)
        return total / max(n, 1)
