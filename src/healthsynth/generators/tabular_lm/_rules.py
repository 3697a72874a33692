"""Clinical rules enforced while decoding: token masks that keep every sampled row valid.

A rule (:class:`healthsynth.knowledge.Rule`) reads "if all ``when`` predicates hold, ``then``
holds". Columns are decoded one at a time in a known order, so each rule is enforced at the
step that decodes the *last* of its columns, when the others are known:

* the last column is the ``then`` column: if the ``when`` part (possibly) holds for a row, its
  tokens are limited to values satisfying ``then`` (a missing value passes when ``missing_ok``);
* the last column is a ``when`` column: if the other ``when`` predicates (possibly) hold and the
  ``then`` column (possibly) fails, its tokens are limited to values for which its own ``when``
  predicate fails (a missing value never satisfies a predicate).

Categorical and discrete columns have one exact value per token. A continuous column's value is
only known up to its fine token's interval, so decided columns are judged conservatively ("may
hold", "may fail"), and a continuous column being restricted to a range keeps the tokens whose
interval meets the range and has its value clamped into it when decoded. A requirement that is
not an interval (outside a two-sided range) drops every token whose interval meets the
forbidden range. Rows whose masks leave no token (rules that contradict each other or the
user's conditions) are marked, decoded freely, and redrawn by the caller.

Column orders (:class:`healthsynth.knowledge.ColumnOrder`: "a <= b" between numeric or date
columns) are enforced the same way: the later of the two columns to be decoded keeps the
tokens whose interval reaches the right side of the earlier one's, and its value is bounded by
it; the codec then places the two values inside their intervals in order.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from healthsynth.errors import ParameterError
from healthsynth.generators.tabular_lm._codec import TableCodec, _ColumnCodec
from healthsynth.generators.tabular_lm._learned_masks import LearnedMasks
from healthsynth.knowledge import ColumnOrder, Predicate, Rule, RuleSet

__all__ = ["RuleDecoder"]

_INF = float("inf")


@dataclass
class _Requirement:
    """What a restricted column must satisfy on some rows."""

    rows: np.ndarray  # (n,) bool: rows the requirement applies to
    pred: Predicate
    negate: bool  # True: the predicate must FAIL; False: it must HOLD
    missing_ok: bool  # whether a missing value satisfies the requirement
    unless: Predicate | None = None  # alternatively, this predicate (on the same column) fails


class RuleDecoder(LearnedMasks):
    """Per-step token masks for a batch, given a rule set, a codec and a slot order.

    Declared rules are enforced here; the learned structure (orders, ties, columns missing
    together or when a category says so) by the masks of :class:`LearnedMasks`.
    """

    def __init__(
        self,
        rules: RuleSet | None,
        codec: TableCodec,
        orders: Sequence[ColumnOrder] = (),
        ties: dict[tuple[str, str], float] | None = None,
        together: Sequence[Sequence[str]] = (),
        when: Sequence[Any] = (),
    ) -> None:
        self.codec = codec
        self.rules = list(rules) if rules is not None else []
        names = [c.name for c in codec.columns]
        self.col_index = {n: i for i, n in enumerate(names)}
        self._learn_structure(codec, orders, ties or {}, together, when)
        for r in self.rules:
            for p in (*r.when, r.then):
                if p.column not in self.col_index:
                    raise ParameterError(
                        f"rule '{r.name}' uses column '{p.column}', which tabular-lm does not "
                        f"generate (identifiers and free text are not modelled); modelled "
                        f"columns: {', '.join(names)}"
                    )
                cc = codec.codecs[p.column]
                if cc.mode == "continuous" and p.minimum is None and p.maximum is None:
                    raise ParameterError(
                        f"rule '{r.name}' compares continuous column '{p.column}' with a list "
                        "of values; use a range (min/max) for a continuous column"
                    )
        # exact truth of each predicate per token of cat/discrete columns
        self._truth: dict[int, np.ndarray] = {}
        for r in self.rules:
            if not r.when and not self._satisfiable(r):
                raise ParameterError(
                    f"rule '{r.name}' ({r.then.describe()}) allows no value column "
                    f"'{r.then.column}' had in the training data, so no row could satisfy it; "
                    "check its limits"
                )

    def _satisfiable(self, r: Rule) -> bool:
        """Whether an always-on rule leaves some present value of its column.

        (A rule met only by missing values would blank the column: surely a mistake.)
        """
        cc = self.codec.codecs[r.then.column]
        if cc.mode != "continuous":
            return bool(self._token_truth(r.then)[: len(cc.values)].any())
        lo = -_INF if r.then.minimum is None else float(r.then.minimum)
        hi = _INF if r.then.maximum is None else float(r.then.maximum)
        return bool(cc.edges[-1] >= lo and cc.edges[0] <= hi)

    # -- predicate truth on decided columns -------------------------------------------------
    def _token_truth(self, p: Predicate) -> np.ndarray:
        key = id(p)
        if key not in self._truth:
            cc = self.codec.codecs[p.column]
            values = pd.Series(list(cc.values), dtype=object)
            t = p.holds(values) if len(values) else np.zeros(0, bool)
            if cc.has_na:
                t = np.concatenate([t, [False]])
            self._truth[key] = np.asarray(t, bool)
        return self._truth[key]

    def _may(self, p: Predicate, state: _BatchState) -> tuple[np.ndarray, np.ndarray]:
        """(may hold, may fail) per row for predicate ``p`` on an already decoded column."""
        ci = self.col_index[p.column]
        cc = self.codec.codecs[p.column]
        if cc.mode != "continuous":
            t = self._token_truth(p)[state.tokens[ci]]
            return t, ~t
        lo, hi = state.low[ci], state.high[ci]
        present = ~np.isnan(lo)
        pl = -_INF if p.minimum is None else float(p.minimum)
        ph = _INF if p.maximum is None else float(p.maximum)
        may_hold = present & (hi >= pl) & (lo <= ph)
        may_fail = ~present | (lo < pl) | (hi > ph)
        return may_hold, may_fail

    # -- the batch ----------------------------------------------------------------------------
    def start(self, n: int, order: np.ndarray) -> _BatchState:
        """Begin a batch decoded in slot ``order``: work out where each rule is enforced."""
        col_order: list[int] = []
        for s in order.tolist():
            c = self.codec.slot_column[s]
            if c not in col_order:
                col_order.append(c)
        rank = {c: i for i, c in enumerate(col_order)}
        enforce: dict[int, list[Rule]] = {}
        for r in self.rules:
            last = max((self.col_index[c] for c in r.columns), key=lambda c: rank[c])
            enforce.setdefault(last, []).append(r)
        return _BatchState(n=n, enforce=enforce, n_columns=len(self.codec.columns))

    def _requirements(self, ci: int, state: _BatchState) -> list[_Requirement]:
        name = self.codec.columns[ci].name
        out = []
        for r in state.enforce.get(ci, []):
            gate = np.ones(state.n, bool)
            own = [p for p in r.when if p.column == name]
            for p in r.when:
                if p.column != name:
                    gate &= self._may(p, state)[0]
            if r.then.column == name:
                # when C is also in `when` ("if age >= 60 then age <= 50"), a value may satisfy
                # `then` or fail its own `when` predicate (the first one, if several)
                out.append(
                    _Requirement(
                        gate,
                        r.then,
                        negate=False,
                        missing_ok=r.missing_ok,
                        unless=own[0] if own else None,
                    )
                )
                continue
            then_fails = self._may(r.then, state)[1]
            if r.missing_ok:
                then_fails &= ~self._missing(r.then.column, state)
            rows = gate & then_fails
            for p in own:
                # with several predicates on C in `when`, failing any one suffices; the first
                # is chosen (conservative, still valid)
                out.append(_Requirement(rows, p, negate=True, missing_ok=True))
                break
        return out

    def weights(self, slot: int, state: _BatchState) -> np.ndarray | None:
        """(n, tokens) log-weights for a continuous column's slot under range requirements.

        As for a range condition (``condition_weights``): a token whose interval the rule's
        range cuts keeps only the share inside it, in the rows the rule applies to; without
        that the tokens at the range's ends bring their whole probability into a sliver of it.
        ``None`` where no such requirement applies.
        """
        ci = self.codec.slot_column[slot]
        cc = self.codec.codecs[self.codec.columns[ci].name]
        if cc.mode != "continuous" or not self._enforced(ci, state):
            return None
        part = self.codec.slot_part[slot]
        if part != "fine":
            state.pending[ci] = self._requirements(ci, state)
            state.weighed.add(ci)
        out = None
        for q in state.pending.get(ci, []):
            span = _range_of(q, cc)
            w = cc.range_weights(*span) if span is not None else None
            if w is None or not bool(q.rows.any()):
                continue
            row = w[0] if part != "fine" else w[1][np.minimum(state.tokens[ci], len(w[1]) - 1)]
            add = np.where(q.rows[:, None], row, 0.0)
            out = add if out is None else out + add
        return out

    def _enforced(self, ci: int, state: _BatchState) -> bool:
        return bool(state.enforce.get(ci)) or bool(state.pending.get(ci))

    def mask(self, slot: int, state: _BatchState, base: np.ndarray) -> np.ndarray:
        """Allowed tokens of ``slot`` for each row, given the model/condition mask ``base``."""
        ci = self.codec.slot_column[slot]
        cc = self.codec.codecs[self.codec.columns[ci].name]
        part = self.codec.slot_part[slot]
        if part == "fine" or ci in state.weighed:
            reqs = state.pending.get(ci, [])
        else:
            reqs = self._requirements(ci, state)
            state.pending[ci] = reqs
            if ci in self._below or ci in self._above:
                state.order_limits[ci] = self._order_limits(ci, state)
        limits = state.order_limits.get(ci)
        missing = self._missing_as_group(ci, cc, part, state)
        category = self._category_mask(ci, part, state)
        if not reqs and limits is None and missing is None and category is None:
            return base
        allowed = base.copy()
        if category is not None:
            allowed &= category
        if limits is not None:
            allowed &= self._order_ok(cc, ci, part, limits, state)
        if missing is not None:  # the NA token exactly where the group's decoded columns are NA
            allowed[:, -1] &= missing
            allowed[:, :-1] &= ~missing[:, None]
        for q in reqs:
            if not bool(q.rows.any()):
                continue
            if cc.mode != "continuous":
                t = self._token_truth(q.pred)
                ok = ~t if q.negate else t.copy()
                if q.unless is not None:
                    ok |= ~self._token_truth(q.unless)
                if cc.has_na:
                    ok[-1] = q.missing_ok or q.unless is not None
                allowed &= np.where(q.rows[:, None], ok[None, :], True)
            else:
                ok_rows = self._interval_ok(cc, q, part, state)
                allowed &= np.where(q.rows[:, None], ok_rows, True)
        empty = ~allowed.any(axis=1)
        if bool(empty.any()):
            state.infeasible |= empty
            allowed[empty] = base[empty]
        return allowed

    def _interval_ok(
        self, cc: _ColumnCodec, q: _Requirement, part: str, state: _BatchState
    ) -> np.ndarray:
        """(n, tokens) allowed for a continuous column under requirement ``q``."""
        pl = -_INF if q.pred.minimum is None else float(q.pred.minimum)
        ph = _INF if q.pred.maximum is None else float(q.pred.maximum)
        sub = cc.sub_edges  # (K, F+1)
        a, b = sub[:, :-1], sub[:, 1:]  # (K, F)
        span = _range_of(q, cc, own=True)
        two_sided_out = span is None
        lo, hi = span if span is not None else (-_INF, _INF)
        if q.unless is not None:
            # allowed: inside `then`, or wholly outside the own `when` range; whole intervals
            # only, so no clamping is needed (values in a straddling fine interval are lost)
            wl = -_INF if q.unless.minimum is None else float(q.unless.minimum)
            wh = _INF if q.unless.maximum is None else float(q.unless.maximum)
            fine_ok = ((a >= pl) & (b <= ph)) | (b < wl) | (a > wh)
            two_sided_out = True
        elif two_sided_out:
            fine_ok = (b < pl) | (a > ph)  # the whole interval avoids [pl, ph]
        else:
            fine_ok = (b >= lo) & (a <= hi)
        if not two_sided_out:
            # rows under this requirement: narrow their bounds for the decoder's clamp
            ci = self.col_index[q.pred.column]
            rows = q.rows
            state.bound_low[ci] = np.where(
                rows, np.maximum(state.bound_low[ci], lo), state.bound_low[ci]
            )
            state.bound_high[ci] = np.where(
                rows, np.minimum(state.bound_high[ci], hi), state.bound_high[ci]
            )
        if part == "coarse":
            coarse_ok = fine_ok.any(axis=1)
            if cc.has_na:
                na_ok = q.missing_ok or q.unless is not None
                coarse_ok = np.concatenate([coarse_ok, [na_ok]])
            return np.broadcast_to(coarse_ok[None, :], (state.n, len(coarse_ok)))
        # fine slot: rows' chosen coarse token picks the row of the table
        ci = self.col_index[q.pred.column]
        chosen = state.tokens[ci]
        out = fine_ok[np.minimum(chosen, fine_ok.shape[0] - 1)]
        if cc.has_na:  # a missing value has one (meaningless) fine token: leave it alone
            out[chosen == cc.slot_sizes[0] - 1] = True
        return out

    def record(self, slot: int, state: _BatchState, pick: np.ndarray) -> None:
        """Remember the token chosen at ``slot`` (and a continuous column's interval)."""
        ci = self.codec.slot_column[slot]
        cc = self.codec.codecs[self.codec.columns[ci].name]
        part = self.codec.slot_part[slot]
        if part != "fine":
            state.tokens[ci] = pick
            if cc.mode == "continuous":
                na = cc.has_na & (pick == cc.slot_sizes[0] - 1)
                state.low[ci] = np.where(na, np.nan, 0.0)
                state.high[ci] = state.low[ci].copy()
            elif cc.mode == "discrete" and ci in self._orders_of:
                vals = np.asarray([*cc.values, np.nan], float)
                value = vals[np.minimum(pick, len(vals) - 1)]
                if cc.has_na:
                    value = np.where(pick == cc.slot_sizes[0] - 1, np.nan, value)
                state.low[ci], state.high[ci] = value, value
                state.done.add(ci)
            return
        coarse = state.tokens[ci]
        na = coarse == cc.slot_sizes[0] - 1
        if not cc.has_na:
            na = np.zeros_like(na)
        k = np.minimum(coarse, cc.sub_edges.shape[0] - 1)
        sub = cc.sub_edges
        a, b = sub[k, pick], sub[k, pick + 1]
        a = np.maximum(a, state.bound_low[ci])
        b = np.minimum(b, state.bound_high[ci])
        b = np.maximum(a, b)
        state.low[ci] = np.where(na, np.nan, a)
        state.high[ci] = np.where(na, np.nan, b)
        state.done.add(ci)


def _range_of(q: _Requirement, cc: _ColumnCodec, own: bool = False) -> tuple[float, float] | None:
    """The one range a continuous column's values must fall in under ``q``.

    ``None`` where it is no single range: a value outside a two-sided range, or (unless
    ``own``, the requirement's own range) one that may also fail its own ``when``.
    """
    if q.unless is not None and not own:
        return None
    pl = -_INF if q.pred.minimum is None else float(q.pred.minimum)
    ph = _INF if q.pred.maximum is None else float(q.pred.maximum)
    step = 10.0 ** -(cc.column.precision if cc.column.precision is not None else 6)
    if not q.negate:
        return pl, ph
    if pl == -_INF:  # must be > ph
        return ph + step, _INF
    if ph == _INF:  # must be < pl
        return -_INF, pl - step
    return None


class _BatchState:
    """What the decoder knows about a batch so far."""

    def __init__(self, *, n: int, enforce: dict[int, list[Rule]], n_columns: int) -> None:
        self.n = n
        self.enforce = enforce
        self.tokens: dict[int, np.ndarray] = {}
        self.low: dict[int, np.ndarray] = {}
        self.high: dict[int, np.ndarray] = {}
        self.bound_low = {c: np.full(n, -_INF) for c in range(n_columns)}
        self.bound_high = {c: np.full(n, _INF) for c in range(n_columns)}
        self.pending: dict[int, list[_Requirement]] = {}
        self.weighed: set[int] = set()  # columns whose requirements :meth:`weights` worked out
        self.order_limits: dict[int, tuple[np.ndarray, np.ndarray] | None] = {}
        self.done: set[int] = set()  # columns whose value (or interval) is known
        self.infeasible = np.zeros(n, bool)

    def bounds(self) -> dict[int, tuple[np.ndarray, np.ndarray]]:
        """Per continuous column with finite bounds: (low, high) arrays for the decoder."""
        out = {}
        for c in self.bound_low:
            lo, hi = self.bound_low[c], self.bound_high[c]
            if bool(np.isfinite(lo).any() | np.isfinite(hi).any()):
                out[c] = (lo, hi)
        return out
