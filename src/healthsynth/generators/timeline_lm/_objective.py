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


def padded_length(n: int, limit: int) -> int:
    """``n`` rounded up to one of four lengths per octave (16, 20, 24, 28, 32, 40, …), ≤ ``limit``.

    Batches of a few fixed shapes let the C allocator reuse the blocks it freed at an earlier
    step of the same shape. With every batch a different shape, glibc's heap fragmented: a fit
    of the full NAFLD cohort held 0.55 GB of live memory and 2.5 GB of resident memory after two
    minutes, rising; padded, 1.4 GB, flat (``docs/timelines.md``). The padding costs at most a
    fifth of a batch's tokens, and the steady allocator more than pays for it.
    """
    step = 1 << max(max(n - 1, 1).bit_length() - 3, 1)
    return min(-(-n // step) * step, limit)


def _batches(
    data: Timelines, token_budget: int, limit: int, rng: np.random.Generator | None
) -> list[np.ndarray]:
    """Patients grouped by padded length, ``token_budget // length`` of them to a batch.

    ``limit`` is the longest sequence the model takes (its positions).
    """
    lengths = np.array([len(t) for t in data.tokens]) + data.static.shape[1]
    padded = np.array([padded_length(int(n), limit) for n in lengths])
    tie = rng.random(len(lengths)) if rng is not None else np.arange(len(lengths))
    order = np.lexsort((tie, padded))  # shuffled within each padded length
    out: list[np.ndarray] = []
    for length in np.unique(padded):
        members = order[padded[order] == length]
        rows = max(1, token_budget // int(length))
        out += [members[i : i + rows] for i in range(0, len(members), rows)]
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
    length = padded_length(s + max(len(data.tokens[i]) for i in idx), s + codec.max_tokens)
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

    Patients are grouped by padded length so that a batch holds about ``token_budget`` tokens.
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
        return len(self._plan(self.train, None))

    def plan(self, rng: np.random.Generator) -> list[np.ndarray]:
        return self._plan(self.train, rng)

    def _plan(self, data: Timelines, rng: np.random.Generator | None) -> list[np.ndarray]:
        limit = self.codec.static.n_slots + self.codec.max_tokens
        return _batches(data, self.token_budget, limit, rng)

    def _loss(
        self, model: Any, data: Timelines, idx: np.ndarray, order: np.ndarray
    ) -> tuple[torch.Tensor, int]:
        inputs, types, labels, states = on_device(
            model, *_batch_tensors(self.codec, data, idx, order)
        )
        logits = self._masked(model(inputs, types), states)
        # every position, padding included, so that a batch's tensors keep its padded shape
        # (padding is labelled -100 and ignored; its state is a static slot's, never empty)
        return F.cross_entropy(logits.flatten(0, 1), labels.flatten()), int((labels >= 0).sum())

    def _masked(self, logits: torch.Tensor, states: torch.Tensor) -> torch.Tensor:
        """Logits with the tokens outside each position's state barred."""
        return logits.masked_fill(~self._state_mask(logits.device)[states], float("-inf"))

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
        logits = self._masked(model(inputs, types), states)
        nll = F.cross_entropy(logits.flatten(0, 1), labels.flatten(), reduction="none")
        keep = labels >= 0  # ignored positions contribute a loss of 0
        per_patient = nll.view(labels.shape).sum(1) / keep.sum(1)
        n_tok = int(keep.sum())
        return BatchLoss(per_patient.mean(), float(n_tok), n_tok)

    def validation_loss(self, model: Any) -> float:
        """Mean negative log-likelihood per token (nats), static slots in canonical order."""
        total, count = 0.0, 0
        for idx in self._plan(self.val, None):
            order = np.tile(np.arange(self.codec.static.n_slots), (len(idx), 1))
            loss, n_tok = self._loss(model, self.val, idx, order)
            total += float(loss) * n_tok
            count += n_tok
        return total / max(count, 1)
