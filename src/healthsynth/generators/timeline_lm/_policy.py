"""Sampling valid timelines: the timeline path's policy for the shared sampler.

Patients of a batch are decoded in lock step after their static prefix (BOS and the static
slots in canonical order); finished patients leave the batch as they end. Every step's logits
are masked so that each timeline is valid:

* grammar: only the tokens of the current state's block;
* time: a start day or gap may not pass the patient's end of follow-up (nothing after death);
  the value of a time token is drawn as soon as it is chosen, so the check is exact;
* flags: an item whose presence flag is "no" is never emitted; ``END`` waits until every item a
  cohort condition asks for has occurred;
* clinical codes: items whose code is specific to the other sex, or to an age band the patient
  is outside of at that moment, are never emitted;
* lab values: value tokens outside the plausible range of the item are never emitted, and
  decoded values are clipped to it;
* learned structure (:mod:`._structure`): an item is emitted at most its maximum count (once
  for once-only items) and only inside its range of days since the patient's first event; a
  terminal item (such as death) ends the timeline, and waits until every required item (an
  ``always`` item, a cohort's item) has occurred;
* pinned days: an item with a fixed day is emitted only when the range its event's time token
  stood for holds that day, and the event is then put on it (the drawn day is a guess within
  the range; the pin is the known answer). Until a required item with a fixed day has occurred,
  no time token may pass that day, so the day stays reachable. An ``at_end`` item (death where
  it always ends follow-up) is put on the patient's end of follow-up whatever day was drawn:
  the model decides whether the patient dies, the end of follow-up says when. Its days since
  the first event are judged at that day.

Besides the masks, the prevalence calibration of :mod:`._calibrate` adds offsets to the logits
(none until it has run): one per item on its tokens at the item step, and one on ``END`` where a
timeline may end (at a start day or a gap), which sets how many events a timeline has.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from healthsynth.generators._lm._decode import decode
from healthsynth.generators._lm._infer import as_numpy
from healthsynth.generators._lm._vocab import BOS
from healthsynth.generators.timeline_lm._codec import TimelineCodec
from healthsynth.generators.timeline_lm._structure import Structure

__all__ = ["Constraints", "TimelineMasks", "TimelinePolicy", "sample_timelines"]


@dataclass
class Constraints:
    """What the sampler must respect for each patient of a batch (all arrays per patient).

    ``end``: latest allowed event day (inf when unknown); ``required``/``forbidden``: per item,
    must occur / may not occur; ``sex``: 0 female, 1 male, -1 unknown; ``age``: age in years at
    day 0 (NaN when unknown).
    """

    end: np.ndarray
    required: np.ndarray  # (n, items) bool
    forbidden: np.ndarray  # (n, items) bool
    sex: np.ndarray
    age: np.ndarray


class TimelineMasks:
    """Precomputed masks for constrained decoding of one codec (and one code mapping)."""

    def __init__(
        self,
        codec: TimelineCodec,
        *,
        item_sexes: list[tuple[bool, bool]],
        item_ages: list[tuple[float, float]],
        value_ranges: list[tuple[float | None, float | None]],
        structure: Any = None,
        item_bias: np.ndarray | None = None,
        end_bias: float = 0.0,
    ) -> None:
        self.codec = c = codec
        # prevalence calibration: an offset per item token (None: no offsets) and on END
        self.token_bias: np.ndarray | None = None
        if item_bias is not None and np.any(item_bias) and c.n_item_tokens:
            self.token_bias = np.asarray(item_bias, np.float32)[c.token_item]
        self.end_bias = np.float32(end_bias)
        base = c.state_mask()
        # rows of the mask table: one per state, plus one per (fine state, coarse token)
        rows = [base]
        self.fine_row: dict[int, int] = {}
        n_rows = base.shape[0]
        fine_specs: list[tuple[int, int, np.ndarray]] = []  # fine state, its block, allowed table
        fine_specs.append((c.S_START_F, c.start_f, c.start.fine_table()))
        fine_specs.append((c.S_GAP_F, c.gap_f, c.gap.fine_table()))
        value_ok0: list[np.ndarray | None] = []
        joint_ok: list[tuple[int, np.ndarray]] = []
        for i, num in enumerate(c.values):
            if num is None:
                value_ok0.append(None)
                continue
            low, high = value_ranges[i]
            ok0, ok1 = num.within(low, high)
            if c.joint[i]:  # plausible values on the item's joint tokens
                joint_ok.append((c.joint0[i], ok0))
                value_ok0.append(None)
                continue
            value_ok0.append(ok0)
            if num.two:
                assert ok1 is not None
                fine_specs.append((c.S_VAL_F[i], c.val_f[i], ok1))
        for state, block, table in fine_specs:
            k, f = table.shape
            t = np.zeros((k, c.vocab_size), bool)
            t[:, block : block + f] = table
            self.fine_row[state] = n_rows
            rows.append(t)
            n_rows += k
        # plausible value ranges on coarse value tokens
        for i, allowed0 in enumerate(value_ok0):
            if allowed0 is not None:
                base[c.S_VAL_C[i], c.val_c[i] : c.val_c[i] + len(allowed0)] &= allowed0
        for a, ok in joint_ok:
            base[c.S_ITEM, a : a + len(ok)] &= ok
        self.table = np.concatenate(rows, axis=0)
        # state -> row in the table (fine states are offset by the chosen coarse token)
        self.row_base = np.arange(c.n_states)
        self.is_fine = np.zeros(c.n_states, bool)
        self.block_start = np.zeros(c.n_states, np.int64)
        for state, row in self.fine_row.items():
            self.row_base[state] = row
            self.is_fine[state] = True
        for s, (a, _) in enumerate(c.state_blocks()):
            self.block_start[s] = a
        self.marker = np.asarray(c.state_marker, np.int64)
        self.item_female = np.array([s[0] for s in item_sexes], bool)
        self.item_male = np.array([s[1] for s in item_sexes], bool)
        self.item_age_lo = np.array([a[0] for a in item_ages], float)
        self.item_age_hi = np.array([a[1] for a in item_ages], float)
        # time lower/upper bounds per token of the start and gap blocks
        self.start_lb0, self.gap_lb0 = c.start.lb0, c.gap.lb0
        self.start_lb1, self.start_ub1 = c.start.lb1, c.start.ub1
        self.gap_lb1, self.gap_ub1 = c.gap.lb1, c.gap.ub1
        self.integer_days = c.state["time_precision"] == 0
        self.has_val = np.array(
            [v is not None and not j for v, j in zip(c.values, c.joint, strict=True)], bool
        )
        self.two_val = np.array([v is not None and v.two for v in c.values], bool)
        self.val_c_state = np.array(c.S_VAL_C, np.int64)
        self.val_f_state = np.array(c.S_VAL_F, np.int64)
        self.structure = structure
        names = [f"{t}/{i}" for t, i in c.items]
        self._keep_rules(structure if structure is not None else Structure(names))

    def _keep_rules(self, s: Structure) -> None:
        """The learned structure's arrays per item, and which kinds of rule there are at all."""
        self.max_count, self.terminal = s.max_count, s.terminal
        self.time_lo, self.time_hi = s.time_lo, s.time_hi
        # pinned days: a fixed day per item (NaN: none), or the end of follow-up (at_end)
        self.fixed_day, self.at_end = s.fixed_day, s.at_end
        self.due_day = np.where(np.isfinite(s.fixed_day), s.fixed_day, np.inf)  # as a deadline
        self.has_time_bounds = bool(np.isfinite(s.time_lo).any() or np.isfinite(s.time_hi).any())
        self.has_counts = bool((s.max_count < np.iinfo(np.int32).max).any())
        self.has_terminal = bool(s.terminal.any())
        self.has_fixed = bool(np.isfinite(s.fixed_day).any())
        self.has_pins = self.has_fixed or bool(s.at_end.any())


class TimelinePolicy:
    """Decode the timelines of ``n`` patients whose static tokens are drawn already."""

    def __init__(
        self,
        masks: TimelineMasks,
        static_local: np.ndarray,
        constraints: Constraints,
        rng: np.random.Generator,
    ) -> None:
        c = masks.codec
        n = len(static_local)
        self.m, self.c, self.rng, self.static_local = masks, c, rng, static_local
        self.alive = np.arange(n)  # original row of each live row
        self.state = np.full(n, c.S_START_C, np.int64)
        self.prev_coarse = np.zeros(n, np.int64)
        self.t_now = np.zeros(n)
        self.end = np.asarray(constraints.end, float)
        self.required = np.array(constraints.required, bool)
        sex = np.asarray(constraints.sex, np.int64)
        self.age = np.asarray(constraints.age, float)
        item_sex_ok = np.ones((n, len(c.items)), bool)
        item_sex_ok[sex == 0] &= masks.item_female
        item_sex_ok[sex == 1] &= masks.item_male
        self.static_item_ok = item_sex_ok & ~np.asarray(constraints.forbidden, bool)
        self.required &= self.static_item_ok
        self.log: list[tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]] = []
        self.step = 0
        # learned structure: events so far per item, the first event's day, a terminal item seen
        self.counts = np.zeros((n, len(c.items)), np.int32) if masks.has_counts else None
        self.t0 = np.full(n, np.nan)
        self.finished = np.zeros(n, bool)
        self.has_event = np.zeros(n, bool)
        # per live row: the range of days the current event's time token stood for
        self.day_lo, self.day_hi = np.zeros(n), np.zeros(n)

    def prefix(self) -> tuple[np.ndarray, np.ndarray]:
        c, sc, n = self.c, self.c.static, len(self.static_local)
        order = np.arange(sc.n_slots)
        prefix = self.static_local[:, order] + sc.offset[order]
        inputs = np.concatenate([np.full((n, 1), BOS), prefix], axis=1).astype(np.int64)
        types = np.concatenate([sc.marker[order], [c.state_marker[c.S_START_C]]]).astype(np.int64)
        return inputs, np.broadcast_to(types, (n, len(types)))

    def block(self) -> tuple[int, int]:
        return 0, self.c.vocab_size

    def adjust(self, logits: np.ndarray) -> np.ndarray:
        """The logits plus the calibration offsets (items at the item step, END at a time step)."""
        bias, c, state = self.m.token_bias, self.c, self.state
        if bias is not None:
            at = state == c.S_ITEM
            if at.any():
                logits[at, c.item0 : c.item0 + c.n_item_tokens] += bias
        if self.m.end_bias:
            logits[(state == c.S_START_C) | (state == c.S_GAP_C), c.END] += self.m.end_bias
        return logits

    def allowed(self, logits: np.ndarray) -> np.ndarray:
        c, m, rows, state = self.c, self.m, self.alive, self.state
        allowed = m.table[m.row_base[state] + np.where(m.is_fine[state], self.prev_coarse, 0)]
        # items: flags, sex, age at this moment
        age_now = self.age[rows] + self.t_now / 365.25
        age_ok = (age_now[:, None] >= m.item_age_lo[None, :]) & (
            age_now[:, None] <= m.item_age_hi[None, :]
        )
        age_ok |= np.isnan(age_now)[:, None]
        item_ok = self.static_item_ok[rows] & age_ok
        if self.counts is not None:
            item_ok &= self.counts[rows] < m.max_count[None, :]
        # a terminal item ends the timeline: not before the other required items
        required = self.required[rows]
        if m.has_terminal and required.any():
            others = required.sum(axis=1)[:, None] - required
            item_ok &= ~(m.terminal[None, :] & (others > 0))
        it0, n_tok = c.item0, c.n_item_tokens
        at_time = (state == c.S_START_C) | (state == c.S_GAP_C)
        # a patient who may emit no item any more can only end; so can one out of room, and
        # one whose last item was terminal
        done = at_time & (~item_ok.any(axis=1) | self.finished[rows])
        item_ok &= self._pins_and_bounds(state == c.S_ITEM)
        allowed[:, it0 : it0 + n_tok] &= item_ok[:, c.token_item]
        if c.max_tokens - self.step <= 6:  # no room for another full event
            done |= at_time
        if done.any():
            allowed[done] = False
            allowed[done, c.END] = True
        # END waits for required items
        allowed[:, c.END] &= ~self.required[rows].any(axis=1)
        self._time_masks(allowed)
        # a row with nothing left to do ends (its unmet requirements are reported)
        allowed[~allowed.any(axis=1), c.END] = True
        return allowed

    def _pinned_days(self) -> np.ndarray:
        """Per live row and item: the day the item's event must fall on (NaN: any day)."""
        end = self.end[self.alive]
        days = np.repeat(self.m.fixed_day[None, :], len(end), axis=0)
        days[:, self.m.at_end] = np.where(np.isfinite(end), end, np.nan)[:, None]
        return days

    def _pins_and_bounds(self, at_item: np.ndarray) -> np.ndarray:
        """Items allowed by their pinned day and their days since the start.

        A pinned item is judged at its pinned day: its days since the first event must be
        within the item's bounds, and a fixed day (at an item step) must lie in the range the
        event's time token stood for. An ``at_end`` item needs no such range: it is terminal,
        so moving it on to the end of follow-up passes no other event.
        """
        m, rows = self.m, self.alive
        ok = np.ones((len(rows), len(m.time_lo)), bool)
        first = ~self.has_event[rows]  # the coming event is the first: 0 days since the start
        day = self.t_now[:, None]
        if m.has_pins:
            pinned = self._pinned_days()
            judged = ~np.isnan(pinned) & (at_item[:, None] | m.at_end[None, :])
            fits = (pinned >= self.day_lo[:, None]) & (pinned <= self.day_hi[:, None])
            ok &= ~judged | fits | m.at_end[None, :]
            day = np.where(judged, pinned, day)
        if m.has_time_bounds:
            since = np.where(first[:, None], 0.0, day - self.t0[rows][:, None])
            ok &= (since >= m.time_lo[None, :]) & (since <= m.time_hi[None, :])
        return ok

    def _limit(self) -> np.ndarray:
        """Per live row, the latest day a time token may reach.

        That is the end of follow-up, or the fixed day of a required item still to come.
        """
        end = self.end[self.alive]
        if not self.m.has_fixed:
            return end
        due = np.where(self.required[self.alive], self.m.due_day[None, :], np.inf)
        return np.minimum(end, due.min(axis=1))

    def _time_masks(self, allowed: np.ndarray) -> None:
        """A start day or gap must not pass the end of follow-up (or a required fixed day)."""
        c, m, state = self.c, self.m, self.state
        end = self._limit()
        remaining = end - self.t_now
        for coarse_state, lb0, block, limit in (
            (c.S_START_C, m.start_lb0, c.start_c, end),
            (c.S_GAP_C, m.gap_lb0, c.gap_c, remaining),
        ):
            here = state == coarse_state
            if here.any():
                blk = allowed[:, block : block + lb0.shape[0]]
                blk &= (lb0[None, :] <= limit[:, None]) | ~here[:, None]
        for f_state, lb1, block, limit in (
            (c.S_START_F, m.start_lb1, c.start_f, end),
            (c.S_GAP_F, m.gap_lb1, c.gap_f, remaining),
        ):
            here = state == f_state
            if here.any():
                lb = lb1[np.minimum(self.prev_coarse, lb1.shape[0] - 1)]
                blk = allowed[:, block : block + lb.shape[1]]
                blk &= (lb <= limit[:, None]) | ~here[:, None]

    def _new_time(self, local: np.ndarray) -> np.ndarray:
        """Event days after this step: a start day or gap is drawn once its fine token is known."""
        c, m, state, n = self.c, self.m, self.state, len(self.alive)
        end = self._limit()
        draw = np.zeros(n, bool)
        lo, hi = np.zeros(n), np.zeros(n)
        for f_state, lb1, ub1, origin in (
            (c.S_START_F, m.start_lb1, m.start_ub1, None),
            (c.S_GAP_F, m.gap_lb1, m.gap_ub1, self.t_now),
        ):
            f = state == f_state
            if not f.any():
                continue
            cc = np.minimum(self.prev_coarse, lb1.shape[0] - 1)
            ll = np.clip(local, 0, lb1.shape[1] - 1)
            a, b = lb1[cc, ll], ub1[cc, ll]
            if origin is not None:
                a, b = a + origin, b + origin
            lo = np.where(f, a, lo)
            hi = np.where(f, np.minimum(b, end), hi)
            draw |= f
        if not draw.any():
            return self.t_now.copy()
        self.day_lo, self.day_hi = np.where(draw, lo, self.day_lo), np.where(draw, hi, self.day_hi)
        v = lo + self.rng.random(n) * np.maximum(hi - lo, 0)
        if m.integer_days:
            v = np.maximum(np.minimum(np.round(v), np.floor(hi)), np.ceil(lo))
        return np.where(draw, v, self.t_now)

    def _next_state(self, pick: np.ndarray, item_local: np.ndarray) -> np.ndarray:
        c, m, state = self.c, self.m, self.state
        n_items = len(c.items)
        is_start_c = (state == c.S_START_C) & (pick != c.END)
        is_gap_c = (state == c.S_GAP_C) & (pick != c.END)
        same = is_gap_c & (pick == c.same_day)
        is_item = state == c.S_ITEM
        nxt = np.full_like(state, -1)
        nxt = np.where(is_start_c, c.S_START_F, nxt)
        nxt = np.where((state == c.S_START_F) | same | (state == c.S_GAP_F), c.S_ITEM, nxt)
        nxt = np.where(is_gap_c & ~same, c.S_GAP_F, nxt)
        if n_items and is_item.any():
            iv = m.has_val[item_local]
            nxt = np.where(is_item & iv, m.val_c_state[item_local], nxt)
            nxt = np.where(is_item & ~iv, c.S_GAP_C, nxt)
        if n_items:
            is_val = state >= c.S_VAL_C[0]
            if is_val.any():
                vidx = np.clip((state - c.S_VAL_C[0]) // 2, 0, n_items - 1)
                coarse_state = ((state - c.S_VAL_C[0]) % 2 == 0) & is_val
                to_fine = coarse_state & m.two_val[vidx]
                nxt = np.where(to_fine, m.val_f_state[vidx], nxt)
                nxt = np.where(is_val & ~to_fine, c.S_GAP_C, nxt)
        return np.where(pick == c.END, -1, nxt)

    def advance(self, pick: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray | None] | None:
        c, m, state, rows = self.c, self.m, self.state, self.alive
        local = pick - m.block_start[state]
        # the gap block starts with the same-day token: the gap's coarse index is one less
        coarse_local = np.where(state == c.S_GAP_C, local - 1, local)
        self.t_now = self._new_time(local)
        same = (state == c.S_GAP_C) & (pick == c.same_day)
        self.day_lo = np.where(same, self.t_now, self.day_lo)
        self.day_hi = np.where(same, self.t_now, self.day_hi)
        # the day of an event is known at its item token
        is_item = state == c.S_ITEM
        item_local = c.token_item[np.clip(pick - c.item0, 0, max(c.n_item_tokens - 1, 0))]
        real = is_item & (pick != c.END)  # an item state may end a patient with no item left
        if real.any():
            self._place(real, item_local)
            hit = np.zeros_like(self.required)
            hit[rows[real], item_local[real]] = True
            self.required &= ~hit
            if self.counts is not None:
                np.add.at(self.counts, (rows[real], item_local[real]), 1)
            self.finished[rows[real & m.terminal[item_local]]] = True
        started = state == c.S_START_F
        if started.any():
            self.t0[rows[started]] = self.t_now[started]
        self.log.append((rows, pick, state, self.t_now))
        nxt = self._next_state(pick, item_local)
        self.prev_coarse = np.where(m.is_fine[np.maximum(nxt, 0)], coarse_local, self.prev_coarse)
        self.state = nxt
        self.step += 1
        keep = nxt >= 0
        if not keep.any():
            return None
        # the next position's type: its state's marker in the timeline's time-context phase
        phase = c.phase(self.t_now, self.end[rows], ~np.isnan(self.t0[rows]))
        types = (m.marker[np.maximum(nxt, 0)] + phase)[:, None]
        return pick[:, None].astype(np.int64), types, None if keep.all() else keep

    def _place(self, real: np.ndarray, item_local: np.ndarray) -> None:
        """Put events of pinned items on their day; the first event's day starts the count."""
        m, rows = self.m, self.alive
        if m.has_pins:
            end = self.end[rows]
            day = np.where(m.at_end[item_local] & np.isfinite(end), end, m.fixed_day[item_local])
            self.t_now = np.where(real & ~np.isnan(day), day, self.t_now)
        first = real & ~self.has_event[rows]
        self.t0[rows[first]] = self.t_now[first]
        self.has_event[rows[real]] = True

    def select(self, keep: np.ndarray) -> None:
        self.alive, self.state = self.alive[keep], self.state[keep]
        self.prev_coarse, self.t_now = self.prev_coarse[keep], self.t_now[keep]
        self.day_lo, self.day_hi = self.day_lo[keep], self.day_hi[keep]

    def result(self) -> tuple[list[np.ndarray], list[np.ndarray], list[np.ndarray], np.ndarray]:
        """Per patient: tokens, states, event days; and whether its required items occurred."""
        c, n = self.c, len(self.static_local)
        met = ~self.required.any(axis=1)
        rows_all, toks_all, st_all, t_all = (np.concatenate(x) for x in zip(*self.log, strict=True))
        order = np.argsort(rows_all, kind="stable")  # steps stay in order within a patient
        rows_all, toks_all, st_all, t_all = (x[order] for x in (rows_all, toks_all, st_all, t_all))
        bounds = np.searchsorted(rows_all, np.arange(n + 1))
        tokens = [toks_all[bounds[i] : bounds[i + 1]] for i in range(n)]
        states = [st_all[bounds[i] : bounds[i + 1]] for i in range(n)]
        days = [
            t_all[bounds[i] : bounds[i + 1]][st_all[bounds[i] : bounds[i + 1]] == c.S_ITEM]
            for i in range(n)
        ]
        return tokens, states, days, met


def sample_timelines(
    model: Any,
    masks: TimelineMasks,
    *,
    static_local: np.ndarray,
    constraints: Constraints,
    draws: np.random.Generator,
    rng: np.random.Generator,
    temperature: float = 1.0,
    workers: int = 1,
) -> tuple[list[np.ndarray], list[np.ndarray], list[np.ndarray], np.ndarray]:
    """Generate the timelines of patients whose static tokens are already drawn.

    ``draws`` draws the tokens and ``rng`` the days within a time token's interval;
    ``workers`` threads share each step's forward pass. Returns,
    per patient: the token array, the state array and the event days (one per event), and
    whether each patient met its required items.
    """
    c = masks.codec
    policy = TimelinePolicy(masks, static_local, constraints, rng)
    decoder = as_numpy(model).decoder(
        len(static_local), c.static.n_slots + 1 + c.max_tokens, workers=workers
    )
    decode(decoder, policy, rng=draws, max_steps=c.max_tokens, temperature=temperature)
    return policy.result()
