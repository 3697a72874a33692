"""The timeline path of the shared engine: its model size and its training objective.

Each patient is one sequence: BOS, the static slots (in a random order for ``perm_prob`` of the
patients, so that sampling can condition on any of them), then the timeline tokens. The token
type of each position is the marker of its *state* (which block of the vocabulary comes next),
and the loss is taken over that block only.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch.nn import functional as F  # noqa: N812

from healthsynth.generators._lm._model import GPT, build_gpt
from healthsynth.generators._lm._slots import ordered_tokens, random_orders
from healthsynth.generators._lm._train import BatchLoss, on_device
from healthsynth.generators._lm._vocab import BOS
from healthsynth.generators.timeline_lm._codec import TimelineCodec

__all__ = ["TimelineObjective", "Timelines", "build_model"]


def build_model(
    codec: TimelineCodec, *, n_embd: int, n_layer: int, n_head: int, dropout: float, seed: int
) -> GPT:
    """A fresh GPT sized for the codec's vocabulary and longest sequence."""
    return build_gpt(
        vocab_size=codec.vocab_size,
        n_positions=codec.static.n_slots + codec.max_tokens + 1,
        n_embd=n_embd,
        n_layer=n_layer,
        n_head=n_head,
        dropout=dropout,
        seed=seed,
        eos_token_id=codec.END,
    )


@dataclass
class Timelines:
    """Encoded patients: static slot tokens, and per patient its timeline tokens and states."""

    static: np.ndarray  # (patients, static slots) local tokens
    tokens: list[np.ndarray]
    states: list[np.ndarray]
    phases: list[np.ndarray] | None = None  # time-context phase per position (None: all 0)

    def __len__(self) -> int:
        return len(self.tokens)


def _batches(
    data: Timelines, token_budget: int, rng: np.random.Generator | None
) -> list[np.ndarray]:
    """Patients grouped by length so that a batch holds about ``token_budget`` tokens."""
    lengths = np.array([len(t) for t in data.tokens]) + data.static.shape[1] + 1
    if rng is not None:
        noise = rng.random(len(lengths))  # shuffle within equal lengths
        order = np.lexsort((noise, lengths))
    else:
        order = np.argsort(lengths, kind="stable")
    out: list[np.ndarray] = []
    cur: list[int] = []
    longest = 0
    for i in order:
        longest = max(longest, lengths[i])
        if cur and longest * (len(cur) + 1) > token_budget:
            out.append(np.array(cur))
            cur, longest = [], lengths[i]
        cur.append(i)
    if cur:
        out.append(np.array(cur))
    if rng is not None:
        rng.shuffle(out)
    return out


def _batch_tensors(
    codec: TimelineCodec,
    data: Timelines,
    idx: np.ndarray,
    static_order: np.ndarray,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    sc = codec.static
    s = sc.n_slots
    static_ids = ordered_tokens(sc, data.static[idx], static_order)
    length = s + max(len(data.tokens[i]) for i in idx)
    labels = np.full((len(idx), length), -100, np.int64)
    states = np.zeros((len(idx), length), np.int64)
    phases = np.zeros((len(idx), length), np.int64)
    labels[:, :s] = static_ids
    states[:, :s] = static_order
    for r, i in enumerate(idx):
        t = data.tokens[i]
        labels[r, s : s + len(t)] = t
        states[r, s : s + len(t)] = data.states[i]
        if data.phases is not None:
            phases[r, s : s + len(t)] = data.phases[i]
    # positions past a timeline's end are fed END: they only follow real tokens (causal
    # attention), and their labels are ignored
    inputs = np.concatenate(
        [np.full((len(idx), 1), BOS), np.where(labels[:, :-1] < 0, codec.END, labels[:, :-1])],
        axis=1,
    )
    types = codec.state_marker[states] + phases  # a timeline state's marker in its phase
    return (
        torch.from_numpy(inputs),
        torch.from_numpy(types),
        torch.from_numpy(labels),
        torch.from_numpy(states),
    )


class TimelineObjective:
    """Next-token prediction over patients' sequences (an :class:`~._lm._train.Objective`).

    Patients are grouped by length so that a batch holds about ``token_budget`` tokens.
    """

    def __init__(
        self,
        codec: TimelineCodec,
        train: Timelines,
        val: Timelines,
        *,
        token_budget: int,
        perm_prob: float,
    ) -> None:
        self.codec, self.train, self.val = codec, train, val
        self.token_budget, self.perm_prob = token_budget, perm_prob
        self.state_mask = torch.from_numpy(codec.state_mask())

    def steps_per_epoch(self) -> int:
        return len(_batches(self.train, self.token_budget, None))

    def plan(self, rng: np.random.Generator) -> list[np.ndarray]:
        return _batches(self.train, self.token_budget, rng)

    def _loss(
        self, model: Any, data: Timelines, idx: np.ndarray, order: np.ndarray
    ) -> tuple[torch.Tensor, int]:
        inputs, types, labels, states = on_device(
            model, *_batch_tensors(self.codec, data, idx, order)
        )
        logits = model(inputs, types)
        keep = labels >= 0
        mask = self._state_mask(logits.device)
        logits = logits[keep].masked_fill(~mask[states[keep]], float("-inf"))
        return F.cross_entropy(logits, labels[keep]), int(keep.sum())

    def _state_mask(self, device: torch.device) -> torch.Tensor:
        if self.state_mask.device != device:  # moved once, when training on an accelerator
            self.state_mask = self.state_mask.to(device)
        return self.state_mask

    def loss(self, model: Any, indices: np.ndarray, rng: np.random.Generator) -> BatchLoss:
        order = random_orders(self.codec.static, len(indices), self.perm_prob, rng)
        loss, n_tok = self._loss(model, self.train, indices, order)
        return BatchLoss(loss, float(n_tok), n_tok)

    def example_loss(self, model: Any, indices: np.ndarray, rng: np.random.Generator) -> BatchLoss:
        """The mean over patients of each patient's mean token loss (the form DP-SGD needs).

        :meth:`loss` weighs every token of the batch alike, so a patient's gradient would depend
        on the other patients' lengths; here it depends on the patient alone.
        """
        order = random_orders(self.codec.static, len(indices), self.perm_prob, rng)
        inputs, types, labels, states = on_device(
            model, *_batch_tensors(self.codec, self.train, indices, order)
        )
        logits = model(inputs, types)
        keep = labels >= 0
        dev = logits.device
        rows = torch.arange(len(indices), device=dev)[:, None].expand_as(labels)[keep]
        logits = logits[keep].masked_fill(~self._state_mask(dev)[states[keep]], float("-inf"))
        nll = F.cross_entropy(logits, labels[keep], reduction="none")
        per_patient = torch.zeros(len(indices), device=dev).index_add(0, rows, nll) / keep.sum(1)
        n_tok = int(keep.sum())
        return BatchLoss(per_patient.mean(), float(n_tok), n_tok)

    def validation_loss(self, model: Any) -> float:
        """Mean negative log-likelihood per token (nats), static slots in canonical order."""
        total, count = 0.0, 0
        for idx in _batches(self.val, self.token_budget, None):
            order = np.tile(np.arange(self.codec.static.n_slots), (len(idx), 1))
            loss, n_tok = self._loss(model, self.val, idx, order)
            total += float(loss) * n_tok
            count += n_tok
        return total / max(count, 1)
