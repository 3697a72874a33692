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
from healthsynth.generators.tabular_lm._structure import category_token, forced_ties
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


class RuleDecoder:
    """Per-step token masks for a batch, given a rule set, a codec and a slot order."""

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
        self.orders = [(self.col_index[o.low], self.col_index[o.high]) for o in orders]
        self.ties = {  # by column index, for the codec's placing of values
            (self.col_index[lo], self.col_index[hi]): q for (lo, hi), q in (ties or {}).items()
        }
        # column: (other column, its side, the deciding column, tokens that force a tie)
        self._must_tie: dict[int, list[tuple[int, str, int | None, np.ndarray]]] = {}
        self._tie_by: dict[int, list[tuple[int, int, np.ndarray]]] = {}  # category: pairs
        for (lo, hi), t in self.ties.items():
            forced = forced_ties(codec, t)
            if forced is not None:
                by = None if getattr(t, "by", None) is None else self.col_index[t.by]
                self._must_tie.setdefault(hi, []).append((lo, "high", by, forced))
                self._must_tie.setdefault(lo, []).append((hi, "low", by, forced))
                if by is not None:
                    self._tie_by.setdefault(by, []).append((lo, hi, forced))
        self._below: dict[int, list[int]] = {}  # column: columns whose value it is at least
        self._above: dict[int, list[int]] = {}  # column: columns whose value it is at most
        for lo, hi in self.orders:
            self._below.setdefault(hi, []).append(lo)
            self._above.setdefault(lo, []).append(hi)
        self._orders_of = set(self._below) | set(self._above)
        self._together: dict[int, list[int]] = {}  # column: the others of its group
        for group in together:
            idx = [self.col_index[n] for n in group if n in self.col_index]
            for i in idx:
                self._together.setdefault(i, []).extend(j for j in idx if j != i)
        # "columns missing exactly when a category is one value": by column, and by category
        self._missing_when: dict[int, list[tuple[int, int]]] = {}  # column: (category, token)
        self._category_when: dict[int, list[tuple[list[int], int]]] = {}  # category: (cols, tok)
        for m in when:
            by = self.col_index[m.by]
            token = category_token(codec, m.by, m.value)
            if token is None:  # a value the codec never saw: nothing to keep
                continue
            cols = [self.col_index[c] for c in m.columns if c in self.col_index]
            for c in cols:
                self._missing_when.setdefault(c, []).append((by, token))
            self._category_when.setdefault(by, []).append((cols, token))
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

    def _missing(self, column: str, state: _BatchState) -> np.ndarray:
        ci = self.col_index[column]
        cc = self.codec.codecs[column]
        if cc.mode == "continuous":
            return np.isnan(state.low[ci])
        if not cc.has_na:
            return np.zeros(state.n, bool)
        return state.tokens[ci] == cc.slot_sizes[0] - 1

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

    def mask(self, slot: int, state: _BatchState, base: np.ndarray) -> np.ndarray:
        """Allowed tokens of ``slot`` for each row, given the model/condition mask ``base``."""
        ci = self.codec.slot_column[slot]
        cc = self.codec.codecs[self.codec.columns[ci].name]
        part = self.codec.slot_part[slot]
        if part == "fine":
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

    def _category_mask(self, ci: int, part: str, state: _BatchState) -> np.ndarray | None:
        """(n, tokens) allowed for a category whose value decides other columns.

        Where a column it makes missing is decoded already: its value only where the column is
        missing, any other value where it is present. Where the two columns of an order it
        makes equal are decoded already and their intervals do not meet: not that value.
        ``None``: nothing to keep yet.
        """
        if part == "fine" or (ci not in self._category_when and ci not in self._tie_by):
            return None
        cc = self.codec.codecs[self.codec.columns[ci].name]
        allowed = None
        for lo, hi, forced in self._tie_by.get(ci, []):
            if lo not in state.done or hi not in state.done:
                continue
            apart = np.fmax(state.low[lo], state.low[hi]) > np.fmin(state.high[lo], state.high[hi])
            ok = np.ones((state.n, cc.slot_sizes[0]), bool)
            ok[np.ix_(apart, forced[: ok.shape[1]])] = False
            allowed = ok if allowed is None else allowed & ok
        for cols, token in self._category_when.get(ci, []):
            decoded = [c for c in cols if c in state.tokens]
            if not decoded:
                continue
            name = self.codec.columns[decoded[0]].name
            missing = self._missing(name, state)
            ok = np.ones((state.n, cc.slot_sizes[0]), bool)
            ok[:, token] = missing
            ok[missing] = False
            ok[missing, token] = True
            allowed = ok if allowed is None else allowed & ok
        return allowed

    def _missing_as_group(
        self, ci: int, cc: _ColumnCodec, part: str, state: _BatchState
    ) -> np.ndarray | None:
        """Per row, whether column ``ci`` must be missing.

        It must where its group's decoded columns are, or where a decoded category has the
        value under which it is missing. ``None`` when it has no group, none of the group is
        decoded yet, or this is a fine slot.
        """
        if part == "fine" or not cc.has_na:
            return None
        for by, token in self._missing_when.get(ci, []):
            if by in state.tokens:
                return np.asarray(state.tokens[by] == token)
        for other in self._together.get(ci, []):
            if other in state.tokens:
                occ = self.codec.codecs[self.codec.columns[other].name]
                if not occ.has_na:  # never missing in the training part
                    return np.zeros(state.n, bool)
                return np.asarray(state.tokens[other] == occ.slot_sizes[0] - 1)
        return None

    def _order_limits(self, ci: int, state: _BatchState) -> tuple[np.ndarray, np.ndarray] | None:
        """Per row, the least and greatest value of column ``ci`` under its orders.

        Only orders with columns already decoded count (``None``: none decoded yet).
        """
        low, high = np.full(state.n, -_INF), np.full(state.n, _INF)
        seen = False
        for other in self._below.get(ci, []):
            if other in state.done:
                low = np.fmax(low, state.low[other])  # a missing value leaves it be
                seen = True
        for other in self._above.get(ci, []):
            if other in state.done:
                high = np.fmin(high, state.high[other])
                seen = True
        for other, side, by, forced in self._must_tie.get(ci, []):
            # a row whose deciding value always ties (mgus2: pstat = 0) must meet the other's
            # interval from its other side too, so the two values can be placed equal
            if other not in state.done or (by is not None and by not in state.tokens):
                continue
            rows = forced[np.minimum(state.tokens[by], len(forced) - 1)] if by is not None else True
            if side == "high":
                high = np.where(rows, np.fmin(high, state.high[other]), high)
            else:
                low = np.where(rows, np.fmax(low, state.low[other]), low)
            seen = True
        return (low, high) if seen else None

    def _order_ok(
        self,
        cc: _ColumnCodec,
        ci: int,
        part: str,
        limits: tuple[np.ndarray, np.ndarray],
        state: _BatchState,
    ) -> np.ndarray:
        """(n, tokens) allowed for column ``ci`` between its order ``limits``."""
        low, high = limits[0][:, None], limits[1][:, None]
        if cc.mode == "discrete":
            vals = np.asarray(cc.values, float)[None, :]
            ok = (vals >= low) & (vals <= high)
        elif part == "coarse":
            sub = cc.sub_edges
            ok = (sub[None, :, -1] >= low) & (sub[None, :, 0] <= high)
            state.bound_low[ci] = np.maximum(state.bound_low[ci], limits[0])
            state.bound_high[ci] = np.minimum(state.bound_high[ci], limits[1])
        else:  # fine: the intervals of each row's coarse token
            sub = cc.sub_edges[np.minimum(state.tokens[ci], cc.sub_edges.shape[0] - 1)]
            ok = (sub[:, 1:] >= low) & (sub[:, :-1] <= high)
            if cc.has_na:  # a missing value's one fine token
                ok[state.tokens[ci] == cc.slot_sizes[0] - 1] = True
            return ok
        if cc.has_na:  # a missing value keeps any order
            ok = np.concatenate([ok, np.ones((state.n, 1), bool)], axis=1)
        return ok

    def _interval_ok(
        self, cc: _ColumnCodec, q: _Requirement, part: str, state: _BatchState
    ) -> np.ndarray:
        """(n, tokens) allowed for a continuous column under requirement ``q``."""
        pl = -_INF if q.pred.minimum is None else float(q.pred.minimum)
        ph = _INF if q.pred.maximum is None else float(q.pred.maximum)
        sub = cc.sub_edges  # (K, F+1)
        a, b = sub[:, :-1], sub[:, 1:]  # (K, F)
        step = 10.0 ** -(cc.column.precision if cc.column.precision is not None else 6)
        if not q.negate:
            lo, hi = pl, ph
            two_sided_out = False
        elif pl == -_INF:  # must be > ph
            lo, hi, two_sided_out = ph + step, _INF, False
        elif ph == _INF:  # must be < pl
            lo, hi, two_sided_out = -_INF, pl - step, False
        else:
            lo, hi, two_sided_out = -_INF, _INF, True
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
