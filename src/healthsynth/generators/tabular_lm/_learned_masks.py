"""Token masks for what tabular-lm learned every real row holds (a part of the rule decoder).

Orders between two columns ("accept.dt <= fu.date"), ties a category decides ("ptime = futime
when pstat is 0"), columns missing together, and columns missing exactly when a category has
one value: :class:`LearnedMasks` is the part of ``_rules.RuleDecoder`` that keeps them while
decoding. Its methods read the decoder's batch state (``_rules._BatchState``).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from healthsynth.generators.tabular_lm._structure import category_token, forced_ties

__all__ = ["LearnedMasks"]

_INF = float("inf")


class LearnedMasks:
    """The learned structure's masks.

    A base of ``RuleDecoder``, which sets ``codec`` and ``col_index``.
    """

    codec: Any
    col_index: dict[str, int]

    def _missing(self, column: str, state: Any) -> np.ndarray:
        ci = self.col_index[column]
        cc = self.codec.codecs[column]
        if cc.mode == "continuous":
            return np.isnan(state.low[ci])
        if not cc.has_na:
            return np.zeros(state.n, bool)
        return state.tokens[ci] == cc.slot_sizes[0] - 1

    def _learn_structure(
        self,
        codec: Any,
        orders: Sequence[Any],
        ties: dict[tuple[str, str], Any],
        together: Sequence[Sequence[str]],
        when: Sequence[Any],
    ) -> None:
        """Index the orders, ties and missing-value relations by column."""
        self.orders = [(self.col_index[o.low], self.col_index[o.high]) for o in orders]
        self.ties = {  # by column index, for the codec's placing of values
            (self.col_index[lo], self.col_index[hi]): q for (lo, hi), q in ties.items()
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

    def _category_mask(self, ci: int, part: str, state: Any) -> np.ndarray | None:
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

    def _missing_as_group(self, ci: int, cc: Any, part: str, state: Any) -> np.ndarray | None:
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

    def _order_limits(self, ci: int, state: Any) -> tuple[np.ndarray, np.ndarray] | None:
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
        cc: Any,
        ci: int,
        part: str,
        limits: tuple[np.ndarray, np.ndarray],
        state: Any,
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
