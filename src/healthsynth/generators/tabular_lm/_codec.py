"""Rows as token sequences: one or two *slots* per column, each with its own small vocabulary.

* categorical and boolean columns: one slot, a token per category (plus one for "missing");
* numeric, integer and datetime columns with few distinct values: one slot, a token per value;
* other numeric columns: a *coarse* slot (quantile bin, or "missing") and a *fine* slot (one of
  ``F`` equal-mass sub-intervals of that bin, cut at the training values' quantiles). A fine token
  decodes to a uniform draw between its two edges, rounded to the column's precision; equal edges
  (a point mass such as 0) decode to that exact value. So every generated number lies inside the
  observed range, carries the observed precision, and point masses and skew are kept. Dates are
  coded as days since 1970 and rounded to the column's resolution (whole days or seconds).

Every slot's vocabulary is a contiguous block of the model's vocabulary, so "only tokens that
continue a valid value" is a slice plus, for fine slots, a mask chosen by the coarse token.
The codec's state is plain JSON (no pickles).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from healthsynth.data import Column, Schema
from healthsynth.errors import ConditionError
from healthsynth.generators._conditions import Condition, as_date
from healthsynth.generators._lm._vocab import BOS, PAD
from healthsynth.knowledge._orders import as_numbers

__all__ = ["PAD", "BOS", "Condition", "TableCodec"]

_EPOCH = pd.Timestamp("1970-01-01")
#: A datetime column's resolution as a step in days (the unit its values are coded in).
_DATE_STEPS = {"day": 1.0, "second": 1.0 / 86400.0}


class _ColumnCodec:
    """Encoding of one column; ``mode`` is ``cat``, ``discrete`` or ``continuous``."""

    def __init__(self, column: Column, state: dict[str, Any]) -> None:
        self.column = column
        self.state = state
        self.mode: str = state["mode"]
        self.has_na: bool = state["has_na"]
        if self.mode in ("cat", "discrete"):
            self.values = list(state["values"])
        else:
            self.edges = np.asarray(state["edges"], float)
            self.sub_edges = np.asarray(state["sub_edges"], float)  # (K, F+1)

    # -- construction ---------------------------------------------------------------------
    @classmethod
    def fit(
        cls, column: Column, s: pd.Series, *, n_bins: int, n_sub_bins: int, max_discrete: int
    ) -> _ColumnCodec:
        has_na = bool(s.isna().any())
        if column.kind in ("categorical", "boolean"):
            values = list(column.categories or sorted(s.dropna().unique().tolist(), key=str))
            return cls(column, {"mode": "cat", "has_na": has_na, "values": values})
        x = _to_float(s, column)
        x = x[np.isfinite(x)]
        if len(x) == 0:
            return cls(column, {"mode": "discrete", "has_na": True, "values": []})
        uniq = np.unique(x)
        limit = min(max_discrete, max(10, len(x) // 10))
        if len(uniq) <= limit:
            return cls(column, {"mode": "discrete", "has_na": has_na, "values": uniq.tolist()})
        k = int(np.clip(len(x) // 25, 4, n_bins))
        f = int(np.clip(len(x) // (k * 4), 2, n_sub_bins))
        edges = np.unique(np.quantile(x, np.linspace(0, 1, k + 1)))
        k = len(edges) - 1
        bins = np.clip(np.searchsorted(edges, x, side="right") - 1, 0, k - 1)
        sub = np.empty((k, f + 1))
        for b in range(k):
            xb = x[bins == b]
            if len(xb) == 0:  # cannot happen with quantile edges, but stay safe
                xb = np.array([edges[b], edges[b + 1]])
            sub[b] = np.quantile(xb, np.linspace(0, 1, f + 1), method="inverted_cdf")
            sub[b, 0], sub[b, -1] = xb.min(), xb.max()
        return cls(
            column,
            {
                "mode": "continuous",
                "has_na": has_na,
                "edges": edges.tolist(),
                "sub_edges": sub.tolist(),
            },
        )

    # -- vocabulary -----------------------------------------------------------------------
    @property
    def slot_sizes(self) -> list[int]:
        na = 1 if self.has_na else 0
        if self.mode in ("cat", "discrete"):
            return [max(len(self.values), 0) + na]
        return [len(self.edges) - 1 + na, self.sub_edges.shape[1] - 1]

    @property
    def slot_parts(self) -> list[str]:
        return ["value"] if self.mode in ("cat", "discrete") else ["coarse", "fine"]

    # -- encode / decode --------------------------------------------------------------------
    def encode(self, s: pd.Series, rng: np.random.Generator) -> list[np.ndarray]:
        n = len(s)
        na_code = self.slot_sizes[0] - 1
        if self.mode == "cat":
            codes = pd.Categorical(s, categories=self.values).codes.astype(np.int64)
            unknown = (codes < 0) & s.notna().to_numpy()
            if unknown.any():
                raise ConditionError(
                    f"column '{self.column.name}' holds {s[unknown].iloc[0]!r}, which is not "
                    "among its categories"
                )
            return [np.where(codes < 0, na_code, codes)]
        x = _to_float(s, self.column)
        miss = ~np.isfinite(x)
        if self.mode == "discrete":
            vals = np.asarray(self.values, float)
            if len(vals) == 0:
                return [np.zeros(n, np.int64)]
            idx = np.clip(np.searchsorted(vals, np.where(miss, vals[0], x)), 0, len(vals) - 1)
            # nearest stored value (exact for training data)
            left = np.clip(idx - 1, 0, len(vals) - 1)
            xf = np.where(miss, vals[0], x)
            idx = np.where(np.abs(vals[left] - xf) < np.abs(vals[idx] - xf), left, idx)
            return [np.where(miss, na_code, idx).astype(np.int64)]
        k = len(self.edges) - 1
        xf = np.where(miss, self.edges[0], x)
        coarse = np.clip(np.searchsorted(self.edges, xf, side="right") - 1, 0, k - 1)
        sub = self.sub_edges[coarse]  # (n, F+1)
        f = sub.shape[1] - 1
        fine = np.clip((sub[:, 1:-1] <= xf[:, None]).sum(axis=1), 0, f - 1)
        # a value sitting on a point mass (equal consecutive edges) takes a degenerate interval
        degenerate = (sub[:, :-1] == sub[:, 1:]) & (sub[:, :-1] == xf[:, None])
        has_deg = degenerate.any(axis=1)
        if has_deg.any():
            # pick one of the degenerate intervals at random so their tokens share the mass
            r = rng.random(degenerate.shape) * degenerate
            fine = np.where(has_deg, r.argmax(axis=1), fine)
        coarse = np.where(miss, na_code, coarse)
        fine = np.where(miss, 0, fine)
        return [coarse.astype(np.int64), fine.astype(np.int64)]

    def decode(
        self,
        codes: list[np.ndarray],
        rng: np.random.Generator,
        cond: Condition | None,
        bounds: tuple[np.ndarray, np.ndarray] | None = None,
    ) -> pd.Series:
        """Values from tokens; ``bounds`` (per-row low, high) narrow continuous values."""
        if self.mode == "cat":
            n = len(codes[0])
            miss = (codes[0] == self.slot_sizes[0] - 1) if self.has_na else np.zeros(n, bool)
            vals = np.empty(n, dtype=object)
            cat_idx = np.where(miss, 0, codes[0])
            arr = np.asarray(self.values + [None], dtype=object)
            vals[:] = arr[cat_idx]
            vals[miss] = None
            return _restore_dtype(pd.Series(vals, name=self.column.name), self.column)
        return self.values_in(*self.interval(codes, rng, cond, bounds))

    def interval(
        self,
        codes: list[np.ndarray],
        rng: np.random.Generator,
        cond: Condition | None,
        bounds: tuple[np.ndarray, np.ndarray] | None = None,
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray | None]:
        """A numeric column's tokens as per-row intervals: (low, high, missing, uniforms).

        A discrete value is its own interval; a continuous one is its fine token's interval
        (narrowed by ``cond`` and ``bounds``) and comes with the uniform draw that places it.
        """
        n = len(codes[0])
        na_code = self.slot_sizes[0] - 1
        miss = (codes[0] == na_code) if self.has_na else np.zeros(n, bool)
        if self.mode == "discrete":
            vals_arr = np.asarray(self.values, float)
            if len(vals_arr) == 0:
                x = np.full(n, np.nan)
                return x, x, np.ones(n, bool), None
            x = vals_arr[np.clip(np.where(miss, 0, codes[0]), 0, len(vals_arr) - 1)]
            return x, x, miss, None
        k = len(self.edges) - 1
        coarse = np.clip(np.where(miss, 0, codes[0]), 0, k - 1)
        sub = self.sub_edges[coarse]
        j = codes[1]
        a = sub[np.arange(n), j]
        b = sub[np.arange(n), j + 1]
        if cond is not None and cond.values is None:
            a, b = np.maximum(a, cond.low), np.minimum(b, cond.high)
            b = np.maximum(a, b)
        if bounds is not None:
            a, b = np.maximum(a, bounds[0]), np.minimum(b, bounds[1])
            b = np.maximum(a, b)
        return a, b, miss, rng.random(n)

    def values_in(
        self, a: np.ndarray, b: np.ndarray, miss: np.ndarray, u: np.ndarray | None
    ) -> pd.Series:
        """Values placed at ``u`` between ``a`` and ``b`` (discrete: ``a``).

        At the column's precision or resolution and never outside ``[a, b]``; missing where
        ``miss``.
        """
        if u is None:
            x = a
        else:
            x = a + u * (b - a)
            step = _DATE_STEPS.get(self.column.resolution or "")
            if self.column.kind == "datetime" and step is not None:
                x = np.round(x / step) * step  # whole days or seconds, as the real dates
            else:
                prec = self.column.precision if self.column.precision is not None else 6
                x = np.round(x, prec)
                step = 10.0 ** (-prec)
            # rounding must not leave the interval (nor the condition)
            x = np.where(x < a - 1e-12, x + step, x)
            x = np.where(x > b + 1e-12, x - step, x)
            x = np.where((x < a - 1e-12) | (x > b + 1e-12), a, x)
        x = np.where(miss, np.nan, x)
        return _restore_dtype(pd.Series(x, name=self.column.name), self.column)

    # -- conditions -------------------------------------------------------------------------
    def allowed(self, cond: Condition) -> list[np.ndarray]:
        """Allowed local tokens per slot under ``cond`` (fine slot: a (K, F) table)."""
        name = self.column.name
        if self.mode == "cat":
            if cond.values is None:
                num = pd.to_numeric(pd.Series(self.values, dtype=object), errors="coerce")
                if num.isna().any():
                    raise ConditionError(
                        f"condition on '{name}' is a range, but '{name}' is categorical; use "
                        f"one of its values: {', '.join(map(str, self.values))}"
                    )
                ok = ((num >= cond.low) & (num <= cond.high)).to_numpy()
            else:
                ok = np.array([_matches(v, cond.values) for v in self.values], bool)
            if not ok.any():
                raise ConditionError(
                    f"no value of column '{name}' satisfies {cond.describe()}; valid values: "
                    f"{', '.join(map(str, self.values))}"
                )
            return [np.concatenate([ok, np.zeros(int(self.has_na), bool)])]
        lo, hi = _interval(cond, name)
        if self.mode == "discrete":
            vals = np.asarray(self.values, float)
            ok = (vals >= lo) & (vals <= hi)
            if not ok.any():
                raise ConditionError(
                    f"no value of column '{name}' seen in training satisfies {cond.describe()}; "
                    f"its values range from {vals.min():g} to {vals.max():g}"
                )
            return [np.concatenate([ok, np.zeros(int(self.has_na), bool)])]
        sub = self.sub_edges
        fine_ok = (sub[:, 1:] >= lo) & (sub[:, :-1] <= hi)  # (K, F)
        coarse_ok = fine_ok.any(axis=1)
        if not coarse_ok.any():
            lo_text, hi_text = f"{self.edges[0]:g}", f"{self.edges[-1]:g}"
            if self.column.kind == "datetime":
                lo_text, hi_text = as_date(self.edges[0]), as_date(self.edges[-1])
            raise ConditionError(
                f"{cond.describe()} lies outside the range column '{name}' had in training "
                f"({lo_text} to {hi_text})"
            )
        coarse = np.concatenate([coarse_ok, np.zeros(int(self.has_na), bool)])
        if self.has_na:
            fine_ok = np.vstack([fine_ok, np.zeros((1, fine_ok.shape[1]), bool)])
        return [coarse, fine_ok]

    def condition_weights(self, cond: Condition) -> tuple[np.ndarray, np.ndarray] | None:
        """Log-weights of a continuous column's tokens under a range condition.

        A fine token whose interval the range cuts keeps only the share inside it (values are
        uniform within a token), and a coarse token the mean share of its fine tokens (each
        holds an equal share of the training values): without them the tokens at the range's
        ends would bring their whole probability into a sliver of it. ``None`` for other
        columns and for a single value.
        """
        if self.mode != "continuous" or cond.values is not None:
            return None
        return self.range_weights(*_interval(cond, self.column.name))

    def range_weights(self, lo: float, hi: float) -> tuple[np.ndarray, np.ndarray] | None:
        """:meth:`condition_weights` for the range ``lo..hi`` (also a rule's; see there)."""
        if self.mode != "continuous" or not lo < hi:
            return None
        a, b = self.sub_edges[:, :-1], self.sub_edges[:, 1:]
        width = b - a
        inside = np.clip(np.minimum(b, hi) - np.maximum(a, lo), 0.0, None)
        point = ((a >= lo) & (a <= hi)).astype(float)  # a point mass: all or nothing
        frac = np.where(width > 0, inside / np.where(width > 0, width, 1.0), point)
        fine = np.log(np.clip(frac, 1e-9, 1.0))
        coarse = np.log(np.clip(frac.mean(axis=1), 1e-9, 1.0))
        if self.has_na:  # the missing token is masked out by the condition anyway
            coarse = np.concatenate([coarse, [0.0]])
            fine = np.vstack([fine, np.zeros((1, fine.shape[1]))])
        return coarse.astype(np.float32), fine.astype(np.float32)

    def fine_table(self) -> np.ndarray:
        """Allowed fine tokens for each coarse token without conditions (NA: token 0 only)."""
        k, f = len(self.edges) - 1, self.sub_edges.shape[1] - 1
        t = np.ones((k + (1 if self.has_na else 0), f), bool)
        if self.has_na:
            t[-1] = False
            t[-1, 0] = True
        return t


class TableCodec:
    """All column codecs of a table, and the layout of the model vocabulary.

    Vocabulary: ``PAD``, ``BOS``, one *marker* per slot (fed as the token type, it tells the model
    which slot comes next, so columns can come in any order), then each slot's value tokens.
    """

    def __init__(self, schema: Schema, states: dict[str, dict[str, Any]]) -> None:
        self.schema = schema
        self.columns = [c for c in schema.modelled if c.name in states]
        self.codecs = {c.name: _ColumnCodec(c, states[c.name]) for c in self.columns}
        self.slot_column: list[int] = []
        self.slot_part: list[str] = []
        self.slot_size: list[int] = []
        self.column_slots: list[list[int]] = []
        for ci, c in enumerate(self.columns):
            cc = self.codecs[c.name]
            ids = []
            for part, size in zip(cc.slot_parts, cc.slot_sizes, strict=True):
                ids.append(len(self.slot_size))
                self.slot_column.append(ci)
                self.slot_part.append(part)
                self.slot_size.append(max(size, 1))
            self.column_slots.append(ids)
        self.n_slots = len(self.slot_size)
        self.marker = np.arange(2, 2 + self.n_slots)
        self.offset = 2 + self.n_slots + np.concatenate([[0], np.cumsum(self.slot_size)[:-1]])
        self.vocab_size = int(2 + self.n_slots + sum(self.slot_size))

    @classmethod
    def fit(
        cls,
        schema: Schema,
        df: pd.DataFrame,
        *,
        n_bins: int = 32,
        n_sub_bins: int = 16,
        max_discrete: int = 100,
    ) -> TableCodec:
        """Learn every column's vocabulary from ``df``."""
        states = {
            c.name: _ColumnCodec.fit(
                c, df[c.name], n_bins=n_bins, n_sub_bins=n_sub_bins, max_discrete=max_discrete
            ).state
            for c in schema.modelled
        }
        return cls(schema, states)

    def to_dict(self) -> dict[str, Any]:
        """JSON-serializable state."""
        return {name: cc.state for name, cc in self.codecs.items()}

    # -- tokens -----------------------------------------------------------------------------
    def encode(self, df: pd.DataFrame, rng: np.random.Generator) -> np.ndarray:
        """Local token indices, shape (rows, slots), in canonical slot order."""
        parts: list[np.ndarray] = []
        for c in self.columns:
            parts.extend(self.codecs[c.name].encode(df[c.name], rng))
        return np.stack(parts, axis=1) if parts else np.zeros((len(df), 0), np.int64)

    def decode(
        self,
        local: np.ndarray,
        rng: np.random.Generator,
        conditions: dict[str, Condition] | None = None,
        bounds: dict[int, tuple[np.ndarray, np.ndarray]] | None = None,
        orders: list[tuple[int, int]] | None = None,
        ties: dict[tuple[int, int], Any] | None = None,
    ) -> pd.DataFrame:
        """Turn local token indices (canonical slot order) back into a DataFrame.

        ``bounds`` maps a column index to per-row (low, high) limits for its values;
        ``orders`` holds pairs of column indices (low, high) whose values must keep that order:
        their values are placed after every other column's, each pair's inside the part of its
        intervals that keeps the order (the token masks made sure there is one). ``ties`` gives
        a pair's chance that the higher value equals the lower one where its interval allows
        (a follow-up time that is the progression time when nothing progressed): a number, or
        a ``TieChance`` whose chance depends on a decoded categorical column.
        """
        conditions = conditions or {}
        bounds = bounds or {}
        ordered = {c for pair in orders or () for c in pair}
        out: dict[str, pd.Series] = {}
        parts: dict[int, tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray | None]] = {}
        for ci, c in enumerate(self.columns):
            cc = self.codecs[c.name]
            codes = [local[:, s] for s in self.column_slots[ci]]
            if ci in ordered and cc.mode != "cat":  # the same draws, placed later
                parts[ci] = cc.interval(codes, rng, conditions.get(c.name), bounds.get(ci))
            else:
                out[c.name] = cc.decode(codes, rng, conditions.get(c.name), bounds.get(ci))
        if parts:
            pairs = [p for p in orders or () if set(p) <= parts.keys()]
            from healthsynth.generators.tabular_lm._placing import place_ordered

            chances = {
                pair: t.per_row(out) if hasattr(t, "per_row") else t
                for pair, t in (ties or {}).items()
            }
            out.update(place_ordered(self, parts, pairs, chances, rng))
        return pd.DataFrame({c.name: out[c.name] for c in self.columns})

    def slot_offsets(self, conditions: dict[str, Condition]) -> dict[int, np.ndarray]:
        """Log-weights for the logits of range-conditioned continuous columns, by slot.

        A fine slot's has one row per coarse token; see ``condition_weights``.
        """
        out: dict[int, np.ndarray] = {}
        for ci, c in enumerate(self.columns):
            cond = conditions.get(c.name)
            w = self.codecs[c.name].condition_weights(cond) if cond is not None else None
            if w is not None:
                coarse_slot, fine_slot = self.column_slots[ci]
                out[coarse_slot], out[fine_slot] = w
        return out

    def slot_masks(
        self, conditions: dict[str, Condition]
    ) -> tuple[list[np.ndarray], dict[int, np.ndarray]]:
        """Per-slot allowed local tokens, and per fine slot a (coarse tokens × fine) table."""
        masks = [np.ones(s, bool) for s in self.slot_size]
        fine_tables: dict[int, np.ndarray] = {}
        for ci, c in enumerate(self.columns):
            cc = self.codecs[c.name]
            slots = self.column_slots[ci]
            if cc.mode == "continuous":
                fine_tables[slots[1]] = cc.fine_table()
            cond = conditions.get(c.name)
            if cond is None:
                continue
            allowed = cc.allowed(cond)
            masks[slots[0]] = allowed[0]
            if len(allowed) > 1:
                fine_tables[slots[1]] = allowed[1]
        return masks, fine_tables


def _to_float(s: pd.Series, column: Column) -> np.ndarray:
    return as_numbers(s, column.kind)  # dates as days since 1970, as the orders read them


def _restore_dtype(s: pd.Series, column: Column) -> pd.Series:
    """Give generated values the dtype the training column had."""
    has_na = bool(s.isna().any())
    dtype = column.dtype
    if column.kind == "datetime":
        days = s.astype(float)
        na = days.isna()
        days = days.fillna(0.0)  # pandas' unit conversion reads the numbers under NaN too
        if column.resolution in _DATE_STEPS:
            # through whole seconds: days as floats would gain nanoseconds of rounding error
            t = _EPOCH + pd.to_timedelta((days * 86400.0).round(), unit="s")
        else:
            t = _EPOCH + pd.to_timedelta(days, unit="D")
        return t.mask(na)
    if column.kind in ("categorical", "boolean"):
        if dtype.startswith(("int", "uint")) and not has_na:
            return s.astype(dtype)
        if dtype in ("bool", "boolean") and not has_na:
            return s.astype(bool)
        if dtype.startswith(("float", "Int", "UInt")):
            return pd.to_numeric(s).astype("float64" if dtype.startswith("float") else "Int64")
        if dtype.startswith("int") and has_na:
            return pd.to_numeric(s).astype("Int64")
        if dtype in ("str", "string"):
            return s.astype(dtype)
        return s.astype(object)
    if column.kind == "integer" or dtype.startswith(("int", "uint", "Int")):
        if has_na:
            return s.round().astype("Int64")
        return s.round().astype("int64")
    return s.astype("float64")


def _matches(v: Any, allowed: tuple[Any, ...]) -> bool:
    return any(v == a or str(v) == str(a) for a in allowed)


def _interval(cond: Condition, name: str) -> tuple[float, float]:
    if cond.values is None:
        return cond.low, cond.high
    nums = pd.to_numeric(pd.Series(cond.values, dtype=object), errors="coerce")
    if nums.isna().any():
        raise ConditionError(
            f"condition on numeric column '{name}' must be a number; got {cond.values[0]!r}"
        )
    if len(nums) != 1:
        raise ConditionError(f"condition on numeric column '{name}' takes one value or a range")
    v = float(nums.iloc[0])
    return v, v
