"""Patients as token sequences: static attributes, then events in time order.

One patient is::

    BOS  static slots (any order)  START  event  GAP event  GAP event ...  END

* **static slots** are the patients table's columns, encoded by the tabular LM's
  :class:`~healthsynth.generators.tabular_lm._codec.TableCodec` (categories as tokens, numbers as a
  quantile bin plus a sub-bin), plus one yes/no *presence flag* per event item ("has ever had
  diabetes"), which can also be *unsaid*. Training hides the flags of half of the patients and
  half of the flags of the others, so the model learns timelines with and without them.
  Unconditioned patients are sampled with every flag unsaid (nothing is decided up front); a
  cohort ``has=diabetes`` sets that flag to "yes" (the others unsaid) and the decoder must emit
  a diabetes event before it may end the timeline. An item whose flag is "no" is never emitted.
* **START** is the day of the first event relative to the index date (bin + sub-bin tokens);
  **GAP** is the number of days since the previous event: a *same day* token, or bin + sub-bin
  tokens for a positive gap. Gaps are never negative, so time never goes backwards.
* an **event** is an item token (``table/item``) followed by its value tokens when the item has
  values (a lab result: bin + sub-bin, so values are precise, not just binned). With
  ``joint_values``, an item whose values take one token each (at most ``max_discrete`` distinct
  values) has one *joint* token per (item, value) instead: a lab result is then one token.

Every part of the sequence has its own block of the vocabulary and its own *state*; the state of
each position decides which block may come next (a token-type id tells the model the state).

**Time context** (``time_context``, on for new models): a transformer that only sees gaps has
to add them up to know where in time it is, and a small one does that badly: it ended synthetic
NAFLD timelines near the index date although follow-up went on for years. So the token type of
each timeline position also carries the *phase* of the patient's timeline at that point, known
exactly in training and while sampling: not started yet, or (before / after day 0) × (follow-up
left after the latest event: under 90 days, under a year, under three years, more, unknown).
Type tokens are embedded like any token (GPT-2's ``token_type_ids``), so an exported model keeps
the GPT-2 layout. The codec's state is plain JSON.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from healthsynth.data import Column, Dataset, Schema
from healthsynth.generators._folder import jsonable
from healthsynth.generators.tabular_lm._codec import BOS, PAD, TableCodec, _ColumnCodec
from healthsynth.generators.timeline_lm._codec_parts import (
    UNSAID,
    _days,
    _gaps,
    _items_and_flags,
    _precision,
    _spread,
    _static_frame,
    _time_column,
    _value_codecs,
    flag_name,
)
from healthsynth.generators.timeline_lm._numbers import _Num

__all__ = ["BOS", "PAD", "UNSAID", "TimelineCodec", "flag_name"]

_N_MARKERS = 7  # START_C, START_F, GAP_C, GAP_F, ITEM, VAL_C, VAL_F

#: follow-up left after the latest event (days) at the edges of the time-context phases
_LEFT_EDGES = np.array([90.0, 365.0, 1095.0])
#: phases: 0 (no event yet), then (before / after day 0) x (4 spans of follow-up left, unknown)
_N_PHASES = 1 + 2 * (len(_LEFT_EDGES) + 2)


class TimelineCodec:
    """The token layout of patient timelines (see the module docstring).

    Vocabulary: the static :class:`TableCodec` block (``PAD``, ``BOS``, its markers and slots),
    then the timeline markers, ``END``, the start-day and gap blocks, one token per item, and
    each valued item's value block(s).
    """

    def __init__(self, state: dict[str, Any]) -> None:
        self.state = state
        self.static_schema = Schema.from_dict(state["static_schema"])
        self.static = TableCodec(self.static_schema, state["static"])
        self.items: list[tuple[str, str]] = [tuple(x) for x in state["items"]]  # type: ignore[misc]
        self.flag_items: list[int] = list(state["flag_items"])
        self.flag_columns = [flag_name(*self.items[i]) for i in self.flag_items]
        self.max_tokens: int = int(state["max_tokens"])
        tprec = state["time_precision"]
        self.start = _Num(_ColumnCodec(_time_column("__start", tprec), state["start"]))
        self.gap = _Num(_ColumnCodec(_time_column("__gap", tprec), state["gap"]))
        assert self.start.two and self.gap.two, "time fields always have bins and sub-bins"
        self.values: list[_Num | None] = []
        for i, st in enumerate(state["values"]):
            if st is None:
                self.values.append(None)
            else:
                col = Column.from_dict(state["value_columns"][i])
                self.values.append(_Num(_ColumnCodec(col, st)))
        # joint (item, value) tokens for items with one token per value (codecs saved before
        # them have none)
        joint_on = bool(state.get("joint_values", False))
        self.joint = [joint_on and v is not None and not v.two for v in self.values]
        # time context: one marker per (state kind, phase); codecs saved before it have one
        self.n_phases = _N_PHASES if state.get("time_context", False) else 1
        self._lay_out_vocabulary()
        self._lay_out_states()

    def _lay_out_vocabulary(self) -> None:
        """Token ids: the static block, markers, END, time blocks, items, value blocks."""
        base = self.static.vocab_size
        self.markers = np.arange(base, base + _N_MARKERS * self.n_phases)
        self.END = base + _N_MARKERS * self.n_phases
        nxt = self.END + 1

        def block(size: int) -> int:
            nonlocal nxt
            start = nxt
            nxt += size
            return start

        self.start_c = block(self.start.sizes[0])
        self.start_f = block(self.start.sizes[1]) if self.start.two else -1
        self.same_day = block(1)
        self.gap_c = self.same_day + 1
        block(self.gap.sizes[0])
        self.gap_f = block(self.gap.sizes[1]) if self.gap.two else -1
        self.item0 = block(len(self.items))
        self.joint0 = [
            block(v.sizes[0]) if j and v is not None else -1
            for v, j in zip(self.values, self.joint, strict=True)
        ]
        self.n_item_tokens = nxt - self.item0
        # per token of the item block: its item, and its value token (-1: a plain item token)
        self.token_item = np.zeros(self.n_item_tokens, np.int64)
        self.token_item[: len(self.items)] = np.arange(len(self.items))
        self.token_value = np.full(self.n_item_tokens, -1, np.int64)
        for i, a in enumerate(self.joint0):
            if a >= 0:
                size = self.values[i].sizes[0]  # type: ignore[union-attr]
                self.token_item[a - self.item0 : a - self.item0 + size] = i
                self.token_value[a - self.item0 : a - self.item0 + size] = np.arange(size)
        self.val_c: list[int] = []
        self.val_f: list[int] = []
        for v, j in zip(self.values, self.joint, strict=True):
            self.val_c.append(block(v.sizes[0]) if v is not None and not j else -1)
            self.val_f.append(block(v.sizes[1]) if v is not None and v.two else -1)
        self.vocab_size = nxt

    def _lay_out_states(self) -> None:
        """States: static slots, then START_C, START_F, GAP_C, GAP_F, ITEM, VAL_C/F per item."""
        s = self.static.n_slots
        self.S_START_C, self.S_START_F, self.S_GAP_C, self.S_GAP_F, self.S_ITEM = (
            s,
            s + 1,
            s + 2,
            s + 3,
            s + 4,
        )
        self.S_VAL_C = [s + 5 + 2 * i for i in range(len(self.items))]
        self.S_VAL_F = [s + 6 + 2 * i for i in range(len(self.items))]
        self.n_states = s + 5 + 2 * len(self.items)
        marker = np.zeros(self.n_states, np.int64)
        marker[:s] = self.static.marker
        # a timeline state's marker in phase p is its phase-0 marker + p
        k = self.n_phases
        marker[s : s + 5] = self.markers[0 : 5 * k : k]
        marker[self.S_VAL_C] = self.markers[5 * k]
        marker[self.S_VAL_F] = self.markers[6 * k]
        self.state_marker = marker

    def phase(self, t: np.ndarray, end: np.ndarray, started: np.ndarray) -> np.ndarray:
        """Time-context phase, added to a timeline state's marker (0 without time context).

        From the day ``t`` of the latest event, each patient's end of follow-up (NaN or inf:
        unknown) and whether the timeline has started.
        """
        if self.n_phases == 1:
            return np.zeros(np.shape(t), np.int64)
        t, end = np.asarray(t, float), np.asarray(end, float)
        with np.errstate(invalid="ignore"):
            left = np.searchsorted(_LEFT_EDGES, end - t, side="right")
        span = np.where(np.isfinite(end), left, len(_LEFT_EDGES) + 1)
        after = (t > 0).astype(np.int64)
        out = 1 + after * (len(_LEFT_EDGES) + 2) + span
        return np.where(np.asarray(started, bool), out, 0).astype(np.int64)

    # -- construction ---------------------------------------------------------------------
    @classmethod
    def fit(
        cls,
        dataset: Dataset,
        *,
        n_bins: int = 32,
        n_sub_bins: int = 16,
        max_discrete: int = 100,
        max_flags: int = 64,
        max_tokens: int = 512,
        joint_values: bool = False,
        time_context: bool = True,
    ) -> TimelineCodec:
        """Learn the vocabulary from a dataset."""
        events = dataset.events()
        key, time = dataset.key, dataset.time
        item_list, flag_items = _items_and_flags(dataset, events, max_flags)
        static_df, static_schema = _static_frame(dataset, item_list, flag_items)
        static = TableCodec.fit(
            static_schema,
            static_df,
            n_bins=n_bins,
            n_sub_bins=n_sub_bins,
            max_discrete=max_discrete,
        )
        t = _days(events[time], dataset)
        tprec = _precision(t)
        first = events.assign(_t=t).groupby(key, sort=False)["_t"].min()
        gaps = _gaps(events[key].to_numpy(), t)
        gaps = gaps[gaps > 0]
        if len(gaps) == 0:
            gaps = np.array([1.0])
        start_state = _ColumnCodec.fit(
            _time_column("__start", tprec),
            pd.Series(_spread(first.to_numpy(float))),
            n_bins=n_bins,
            n_sub_bins=n_sub_bins,
            max_discrete=0,
        ).state
        gap_state = _ColumnCodec.fit(
            _time_column("__gap", tprec),
            pd.Series(_spread(gaps)),
            n_bins=n_bins,
            n_sub_bins=n_sub_bins,
            max_discrete=0,
        ).state
        values, value_columns = _value_codecs(
            events, item_list, n_bins=n_bins, n_sub_bins=n_sub_bins, max_discrete=max_discrete
        )
        return cls(
            {
                "static_schema": static_schema.to_dict(),
                "static": static.to_dict(),
                "items": [list(ti) for ti in item_list],
                "flag_items": flag_items,
                "time_precision": tprec,
                "start": jsonable(start_state),
                "gap": jsonable(gap_state),
                "values": [jsonable(v) for v in values],
                "value_columns": value_columns,
                "max_tokens": int(max_tokens),
                "joint_values": bool(joint_values),
                "time_context": bool(time_context),
            }
        )

    def to_dict(self) -> dict[str, Any]:
        """JSON-serializable state."""
        return self.state

    # -- encoding -------------------------------------------------------------------------
    def encode(
        self, dataset: Dataset, rng: np.random.Generator
    ) -> tuple[np.ndarray, list[np.ndarray], list[np.ndarray], int]:
        """Static local tokens (patients × slots) and, per patient, timeline tokens and states.

        Timeline tokens are global ids; a timeline longer than ``max_tokens`` is cut (and then
        has no ``END``). Returns the static tokens, the token and state arrays, and how many
        patients were cut.
        """
        static_local, toks, states, _, cut = self.encode_timelines(dataset, rng)
        return static_local, toks, states, cut

    def encode_timelines(
        self, dataset: Dataset, rng: np.random.Generator
    ) -> tuple[np.ndarray, list[np.ndarray], list[np.ndarray], list[np.ndarray], int]:
        """:meth:`encode`, with each timeline position's time-context phase after the states.

        See :meth:`phase`; the phases are all zero for a codec without time context.
        """
        key = dataset.key
        item_index = {ti: i for i, ti in enumerate(self.items)}
        static_df, _ = _static_frame(
            dataset, self.items, self.flag_items, schema=self.static_schema
        )
        static_local = self.static.encode(static_df, rng)
        ids = dataset.patient_table[key].to_numpy()
        ev = dataset.events()
        ev = ev[[ti in item_index for ti in zip(ev["table"], ev["item"], strict=True)]]
        t = _days(ev[dataset.time], dataset)
        pid = ev[key].to_numpy()
        n = len(ev)
        first = np.ones(n, bool)
        if n:
            first[1:] = pid[1:] != pid[:-1]
        gap = np.zeros(n)
        if n:
            gap[1:] = t[1:] - t[:-1]
        item = np.array(
            [item_index[ti] for ti in zip(ev["table"], ev["item"], strict=True)], np.int64
        )
        # five candidate tokens per event: time coarse, time fine, item, value coarse, value fine
        tok = np.full((n, 5), -1, np.int64)
        st = np.full((n, 5), -1, np.int64)
        start_tok = self.start.codec.encode(pd.Series(t), rng)
        gap_tok = self.gap.codec.encode(pd.Series(np.where(gap > 0, gap, 1.0)), rng)
        same = (~first) & (gap <= 0)
        pos = (~first) & (gap > 0)
        tok[first, 0] = self.start_c + start_tok[0][first]
        st[first, 0] = self.S_START_C
        if self.start.two:
            tok[first, 1] = self.start_f + start_tok[1][first]
            st[first, 1] = self.S_START_F
        tok[same, 0] = self.same_day
        st[same, 0] = self.S_GAP_C
        tok[pos, 0] = self.gap_c + gap_tok[0][pos]
        st[pos, 0] = self.S_GAP_C
        if self.gap.two:
            tok[pos, 1] = self.gap_f + gap_tok[1][pos]
            st[pos, 1] = self.S_GAP_F
        tok[:, 2] = self.item0 + item
        st[:, 2] = self.S_ITEM
        vals = ev["value"].to_numpy(float)
        for i, num in enumerate(self.values):
            if num is None:
                continue
            rows = item == i
            if not rows.any():
                continue
            codes = num.codec.encode(pd.Series(vals[rows]), rng)
            if self.joint[i]:  # one token for the item and its value
                tok[rows, 2] = self.joint0[i] + codes[0]
                continue
            tok[rows, 3] = self.val_c[i] + codes[0]
            st[rows, 3] = self.S_VAL_C[i]
            if num.two:
                tok[rows, 4] = self.val_f[i] + codes[1]
                st[rows, 4] = self.S_VAL_F[i]
        # time context: an event's time tokens know the previous event's day, its item and
        # value tokens its own day
        end = np.full(n, np.inf)
        if dataset.end is not None:
            ends = pd.to_numeric(dataset.patient_table.set_index(key)[dataset.end], errors="coerce")
            end = ends.reindex(pid).to_numpy(float)
        prev = np.concatenate([[0.0], t[:-1]]) if n else t
        ph = np.zeros((n, 5), np.int64)
        ph[:, :2] = self.phase(prev, end, ~first)[:, None]
        ph[:, 2:] = self.phase(t, end, np.ones(n, bool))[:, None]
        toks, states, phases, cut = self._per_patient(tok, st, ph, pid, ids)
        return static_local, toks, states, phases, cut

    def _per_patient(
        self, tok: np.ndarray, st: np.ndarray, ph: np.ndarray, pid: np.ndarray, ids: np.ndarray
    ) -> tuple[list[np.ndarray], list[np.ndarray], list[np.ndarray], int]:
        """Split the events' token table by patient (patients table order); cut or end each.

        ``END`` gets the phase of the position before it (the last event's day).
        """
        keep = tok >= 0
        flat_tok = tok[keep]
        flat_st = st[keep]
        flat_ph = ph[keep]
        per_event = keep.sum(axis=1)
        n = len(tok)
        counts = pd.Series(per_event).groupby(pid).sum() if n else pd.Series(dtype=int)
        lengths = counts.reindex(ids, fill_value=0).to_numpy()
        order_in_flat = pd.Index(pd.unique(pid)) if n else pd.Index([])
        starts_flat = np.concatenate([[0], np.cumsum(counts.reindex(order_in_flat).to_numpy())])
        where = {p: starts_flat[j] for j, p in enumerate(order_in_flat)}
        toks, states, phases = [], [], []
        cut = 0
        for p, length in zip(ids, lengths, strict=True):
            a = where.get(p, 0)
            tt = flat_tok[a : a + length]
            ss = flat_st[a : a + length]
            pp = flat_ph[a : a + length]
            if length + 1 > self.max_tokens:
                cut += 1
                tt, ss, pp = tt[: self.max_tokens], ss[: self.max_tokens], pp[: self.max_tokens]
            else:
                tt = np.append(tt, self.END)
                ss = np.append(ss, self.S_START_C if length == 0 else self.S_GAP_C)
                pp = np.append(pp, pp[-1] if length else 0)
            toks.append(tt)
            states.append(ss)
            phases.append(pp)
        return toks, states, phases, cut

    def hide_flags(self, static_local: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """Training copy of the static tokens with presence flags hidden (set to ``UNSAID``).

        Half of the patients have every flag hidden, the other half each flag with probability
        one half. The model thus learns timelines both without any plan (how unconditioned
        patients are sampled: all flags unsaid, so nothing is decided up front) and with some
        items fixed (how cohorts are sampled: the asked item "yes", the others unsaid).
        """
        out = static_local.copy()
        slots = [self.static.column_slots[self._static_index(c)][0] for c in self.flag_columns]
        if not slots:
            return out
        n = len(out)
        hide = (rng.random(n) < 0.5)[:, None] | (rng.random((n, len(slots))) < 0.5)
        block = out[:, slots]
        block[hide] = UNSAID
        out[:, slots] = block
        return out

    def _static_index(self, name: str) -> int:
        return [c.name for c in self.static.columns].index(name)

    # -- masks ----------------------------------------------------------------------------
    def state_blocks(self) -> list[tuple[int, int]]:
        """Per state, the (start, size) of its vocabulary block (END counted separately)."""
        out = [
            (int(self.static.offset[s]), int(self.static.slot_size[s]))
            for s in range(self.static.n_slots)
        ]
        out.append((self.start_c, self.start.sizes[0]))
        out.append((self.start_f, self.start.sizes[1] if self.start.two else 0))
        out.append((self.same_day, 1 + self.gap.sizes[0]))
        out.append((self.gap_f, self.gap.sizes[1] if self.gap.two else 0))
        out.append((self.item0, self.n_item_tokens))
        for i, v in enumerate(self.values):
            out.append((self.val_c[i], v.sizes[0] if v is not None and not self.joint[i] else 0))
            out.append((self.val_f[i], v.sizes[1] if v is not None and v.two else 0))
        return out

    def state_mask(self) -> np.ndarray:
        """(states, vocab) bool: the tokens each state may emit (END in START_C and GAP_C)."""
        m = np.zeros((self.n_states, self.vocab_size), bool)
        for s, (a, size) in enumerate(self.state_blocks()):
            if size:
                m[s, a : a + size] = True
        m[self.S_START_C, self.END] = True
        m[self.S_GAP_C, self.END] = True
        for i, j in enumerate(self.joint):  # such an item comes only as its joint tokens
            if j:
                m[self.S_ITEM, self.item0 + i] = False
        return m
