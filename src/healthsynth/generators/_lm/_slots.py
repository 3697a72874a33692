"""Slot sequences: rows of a table as one token per slot, in any column order.

A *slot codec* (``tabular_lm._codec.TableCodec``, also the static part of a timeline) gives
each slot a block of the vocabulary (``offset``, ``slot_size``) and a marker token (``marker``)
that is fed as the token type of the position that predicts the slot, so the model knows which
column comes whatever the order. Training moves a random subset of columns to the front
(:func:`random_orders`); sampling puts the conditioned columns first (:func:`slot_order`) and
decodes with :class:`SlotPolicy`.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from healthsynth.generators._lm._decode import decode
from healthsynth.generators._lm._infer import SHORT_CHUNK, as_numpy
from healthsynth.generators._lm._vocab import BOS

__all__ = ["SlotPolicy", "ordered_tokens", "random_orders", "sample_slots", "slot_order"]


def slot_order(codec: Any, first_columns: list[int]) -> np.ndarray:
    """Slot order that puts ``first_columns`` first and the rest in canonical order."""
    rest = [c for c in range(len(codec.columns)) if c not in first_columns]
    return np.array([s for c in first_columns + rest for s in codec.column_slots[c]], np.int64)


def random_orders(codec: Any, n: int, perm_prob: float, rng: np.random.Generator) -> np.ndarray:
    """Per-row slot orders: canonical, or a random subset of columns moved to the front."""
    c = len(codec.columns)
    slot_col = np.asarray(codec.slot_column)
    within = np.zeros(codec.n_slots)
    for slots in codec.column_slots:
        within[slots] = np.arange(len(slots))
    col_key = np.tile(np.arange(c, dtype=float) + c, (n, 1))
    if c > 1 and perm_prob > 0:
        permuted = rng.random(n) < perm_prob
        k = rng.integers(1, c, size=n)  # 1..c-1 columns in front
        ranks = np.argsort(np.argsort(rng.random((n, c)), axis=1), axis=1)
        front = permuted[:, None] & (ranks < k[:, None])
        col_key = np.where(front, ranks.astype(float), col_key)
    slot_key = col_key[:, slot_col] * 4 + within[None, :]
    return np.argsort(slot_key, axis=1, kind="stable")


def ordered_tokens(codec: Any, local: np.ndarray, order: np.ndarray) -> np.ndarray:
    """Vocabulary ids of rows of local slot tokens, each row in its own slot ``order``."""
    rows = np.arange(len(local))[:, None]
    return local[rows, order] + codec.offset[order]


def _logsumexp(x: np.ndarray) -> np.ndarray:
    top = np.max(x, axis=1, keepdims=True)
    top = np.where(np.isfinite(top), top, 0.0)
    with np.errstate(divide="ignore"):
        return np.log(np.exp(x - top).sum(axis=1)) + top[:, 0]


class SlotPolicy:
    """Decode rows slot by slot in a fixed ``order`` under per-slot token masks.

    Parameters
    ----------
    codec
        The slot codec.
    n
        Rows to decode.
    order
        Slot order (conditioned columns first).
    masks
        Per slot, the allowed local tokens (conditions and domains).
    fine_tables
        Per fine slot, a (coarse token × fine token) table of allowed pairs.
    constrained
        Slots whose masks come from conditions: the model's probability of the allowed tokens
        there is summed into :attr:`cond_logp` (how plausible the conditions are).
    rules, rule_state
        A ``tabular_lm._rules.RuleDecoder`` and its batch state: rule masks on top.
    offsets
        Per slot, log-weights added to its logits (a 2-d array for a fine slot: one row per
        coarse token), e.g. the share of a token's interval that a range condition keeps.
    """

    def __init__(
        self,
        codec: Any,
        n: int,
        *,
        order: np.ndarray,
        masks: list[np.ndarray],
        fine_tables: dict[int, np.ndarray],
        constrained: set[int] | None = None,
        rules: Any = None,
        rule_state: Any = None,
        offsets: dict[int, np.ndarray] | None = None,
    ) -> None:
        self.codec, self.n, self.order = codec, n, [int(s) for s in order]
        self.offsets = offsets or {}
        self._raw: np.ndarray | None = None  # a constrained slot's logits before the offsets
        self.masks, self.tables = masks, fine_tables
        self.constrained = constrained or set()
        self.rules, self.rule_state = rules, rule_state
        self.out = np.zeros((n, codec.n_slots), np.int64)
        self.cond_logp = np.zeros(n)
        self.chosen: dict[int, np.ndarray] = {}
        self.i = 0

    @property
    def max_len(self) -> int:
        """Positions the decoder needs."""
        return self.codec.n_slots + 1

    def _types(self) -> np.ndarray:
        return np.full((self.n, 1), int(self.codec.marker[self.order[self.i]]), np.int64)

    def prefix(self) -> tuple[np.ndarray, np.ndarray]:
        return np.full((self.n, 1), BOS, np.int64), self._types()

    def block(self) -> tuple[int, int]:
        slot = self.order[self.i]
        off = int(self.codec.offset[slot])
        return off, off + int(self.codec.slot_size[slot])

    def adjust(self, logits: np.ndarray) -> np.ndarray:
        slot = self.order[self.i]
        w = self.offsets.get(slot)
        if slot in self.constrained:  # the model's own logits, for cond_logp
            self._raw = logits
        if self.rules is not None:  # rules' ranges weigh the tokens they cut, per row
            rw = self.rules.weights(slot, self.rule_state)
            if rw is not None:
                logits = logits + rw
        if w is None:
            return logits
        if w.ndim == 2:  # a fine slot: the row of each row's coarse token
            w = w[np.minimum(self.chosen[slot - 1], len(w) - 1)]
        return logits + w

    def allowed(self, logits: np.ndarray) -> np.ndarray:
        slot = self.order[self.i]
        if slot in self.tables:  # a fine slot: what its coarse token allows
            allowed = self.tables[slot][self.chosen[slot - 1]] & self.masks[slot]
        else:
            allowed = np.broadcast_to(self.masks[slot], (self.n, len(self.masks[slot])))
        if self.rules is not None:
            allowed = self.rules.mask(slot, self.rule_state, allowed)
        if slot in self.constrained:
            masked = np.where(allowed, logits, -np.inf)
            total = logits if self._raw is None else self._raw
            self.cond_logp += _logsumexp(masked) - _logsumexp(total)
            self._raw = None
        return allowed

    def advance(self, pick: np.ndarray) -> tuple[np.ndarray, np.ndarray, None] | None:
        slot = self.order[self.i]
        self.chosen[slot] = pick
        if self.rules is not None:
            self.rules.record(slot, self.rule_state, pick)
        self.out[:, slot] = pick
        self.i += 1
        if self.i == len(self.order):
            return None
        return (pick + int(self.codec.offset[slot]))[:, None], self._types(), None

    def select(self, keep: np.ndarray) -> None:
        raise ValueError("every row of a slot sequence has the same length")


def sample_slots(
    model: Any,
    codec: Any,
    m: int,
    *,
    order: np.ndarray,
    masks: list[np.ndarray],
    fine_tables: dict[int, np.ndarray],
    rng: np.random.Generator,
    temperature: float = 1.0,
    constrained: set[int] | None = None,
    rules: Any = None,
    rule_state: Any = None,
    offsets: dict[int, np.ndarray] | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Draw ``m`` rows of local slot tokens (canonical slot order) under the masks.

    ``model`` is a GPT (torch) or its :class:`~._infer.NumpyGPT`; ``order`` the decoding order
    (conditioned columns first, see :func:`slot_order`) and ``constrained`` the conditioned
    slots. Returns the tokens and, per row, the log-probability the model gave to the
    conditioned slots' allowed tokens (0 without conditions): how plausible the conditions are.
    """
    policy = SlotPolicy(
        codec,
        m,
        order=order,
        masks=masks,
        fine_tables=fine_tables,
        constrained=constrained,
        rules=rules,
        rule_state=rule_state,
        offsets=offsets,
    )
    decoder = as_numpy(model).decoder(m, policy.max_len, chunk=SHORT_CHUNK)
    decode(decoder, policy, rng=rng, max_steps=codec.n_slots, temperature=temperature)
    return policy.out, policy.cond_logp
