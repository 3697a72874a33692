"""Drawing rows from a fitted tabular-lm: the slot path and the text path, rules enforced."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from healthsynth.errors import ConditionError
from healthsynth.generators._base import warn
from healthsynth.generators._conditions import Condition
from healthsynth.generators.tabular_lm._structure import equal_when, relation_set
from healthsynth.knowledge import RuleSet

__all__ = ["sample_rows", "valid_rows"]

#: Rounds of redrawing rows that break a rule before giving up.
_MAX_REDRAWS = 20


def sample_rows(
    gen: Any, n: int, conds: dict[str, Condition], *, seed: int | None, workers: int = 1
) -> pd.DataFrame:
    """Draw ``n`` valid rows (codec columns only) from a fitted TabularLM ``gen``.

    Conditions come first and the model's probability of them is measured on the way
    (``df.attrs["condition_probability"]``, with a warning when it is below 0.001). Rows are
    drawn in blocks of ``sample_batch_size``, each with its own seed drawn from ``seed``, so
    the rows do not depend on ``workers``, the number of blocks drawn at once (threads: numpy
    releases the interpreter lock in its array work).
    """
    rng = np.random.default_rng(seed)
    if gen.text_ is not None:
        return _text_rows(gen, n, conds, rng)
    sizes = [min(gen.sample_batch_size, n - s) for s in range(0, n, gen.sample_batch_size)]
    seeds = rng.integers(0, 2**63 - 1, size=len(sizes))
    block = _slot_block(gen, conds)
    if workers > 1 and len(sizes) > 1:
        from concurrent.futures import ThreadPoolExecutor

        with ThreadPoolExecutor(min(workers, len(sizes))) as pool:
            done = list(pool.map(block, sizes, seeds))
    else:
        done = [block(m, s) for m, s in zip(sizes, seeds, strict=True)]
    df = pd.concat([d for d, _ in done], ignore_index=True)
    if conds:
        p = float(np.exp(np.concatenate([lp for _, lp in done])).mean())
        df.attrs["condition_probability"] = p
        if p < 1e-3:
            warn(
                f"the conditions ({'; '.join(c.describe() for c in conds.values())}) have "
                f"probability {p:.1e} under the model: they (almost) never occur together "
                "in the training data, so these rows are extrapolations"
            )
    return df


def _slot_block(gen: Any, conds: dict[str, Condition]) -> Any:
    """A function drawing one block of valid rows (``m``, its seed) on the slot path."""
    from healthsynth.generators._lm._infer import as_numpy
    from healthsynth.generators._lm._slots import sample_slots, slot_order

    codec = gen.codec_
    model = as_numpy(gen.model_)
    names = [c.name for c in codec.columns]
    first = [names.index(c) for c in conds]
    order = slot_order(codec, first)
    deciders = [  # orders whose two values are equal whenever a category has some value
        (names.index(e.low), names.index(e.high), names.index(e.by)) for e in equal_when(gen)
    ]
    if deciders:
        from healthsynth.generators.tabular_lm._order import deciders_first

        front = sum(len(codec.column_slots[c]) for c in first)
        order = deciders_first(order, codec, deciders, front)
    if gen.target_last or gen.label_model_ is not None:  # the target from p(target | rest)
        from healthsynth.generators.tabular_lm._order import slots_last, target_slots

        target = target_slots(codec)
        if len(target) and not set(target.tolist()) & {int(s) for s in order[: len(first)]}:
            order = slots_last(order, target)
    masks, tables = codec.slot_masks(conds)
    offsets = codec.slot_offsets(conds)
    constrained = {s for c in first for s in codec.column_slots[c]}
    decoder = None
    orders = getattr(gen, "column_orders_", None) or []
    together = getattr(gen, "missing_together_", None) or []
    when = getattr(gen, "missing_when_", None) or []
    if gen.rules_ is not None or orders or together or when:
        from healthsynth.generators.tabular_lm._rules import RuleDecoder

        ties = getattr(gen, "order_ties_", None)
        decoder = RuleDecoder(gen.rules_, codec, orders, ties, together, when)
    checks = row_checks(gen)
    relations = relation_set(gen)

    def block(m: int, block_seed: int) -> tuple[pd.DataFrame, np.ndarray]:
        rng = np.random.default_rng(int(block_seed))  # values inside a token's interval
        draws = np.random.default_rng(int(rng.integers(0, 2**62)))  # tokens

        def draw(k: int) -> tuple[pd.DataFrame, np.ndarray, np.ndarray]:
            state = decoder.start(k, order) if decoder is not None else None
            toks, logp = sample_slots(
                model,
                codec,
                k,
                order=order,
                constrained=constrained,
                masks=masks,
                fine_tables=tables,
                rng=draws,
                temperature=gen.temperature,
                rules=decoder,
                rule_state=state,
                offsets=offsets,
            )
            bounds = state.bounds() if state is not None else None
            pairs = decoder.orders if decoder is not None else None
            ties = decoder.ties if decoder is not None else None
            rows = codec.decode(toks, rng, conds, bounds, pairs, ties)
            bad = state.infeasible.copy() if state is not None else np.zeros(k, bool)
            if relations is not None:
                rows, out_of_range = relations.apply(rows, fixed=conds)
                bad |= out_of_range
            return rows, logp, bad

        return valid_rows(checks, draw, m, conds)

    return block


def _text_rows(
    gen: Any, n: int, conds: dict[str, Condition], rng: np.random.Generator
) -> pd.DataFrame:
    """Draw ``n`` valid rows on the base-model text path (one stream, redrawn under rules)."""
    draws = np.random.default_rng(int(rng.integers(0, 2**62)))  # tokens; rng: values
    relations = relation_set(gen)

    def draw_text(m: int) -> tuple[pd.DataFrame, np.ndarray, np.ndarray]:
        block = gen.text_.sample(
            m,
            conds,
            rng=rng,
            draws=draws,
            temperature=gen.temperature,
            batch_size=min(gen.sample_batch_size, 256),
        )
        bad = np.zeros(m, bool)
        if relations is not None:
            block, bad = relations.apply(block, fixed=conds)
        return block, np.zeros(m), bad

    return valid_rows(row_checks(gen), draw_text, n, conds)[0]


class _Checks:
    """Rules and column orders as one check: ``violations(df)``, one column per rule/order."""

    def __init__(self, *parts: Any) -> None:
        self.parts = parts

    def violations(self, df: pd.DataFrame) -> pd.DataFrame:
        return pd.concat([p.violations(df) for p in self.parts], axis=1)


def row_checks(gen: Any) -> Any:
    """What every sampled row of ``gen`` must pass: rules, orders, sums, groups (or None)."""
    from healthsynth.knowledge import EqualWhenSet, MissingTogether, MissingWhenSet, OrderSet

    orders = getattr(gen, "column_orders_", None) or []
    together = getattr(gen, "missing_together_", None) or []
    when = getattr(gen, "missing_when_", None) or []
    equal = equal_when(gen)
    parts = [
        gen.rules_,
        OrderSet(orders, gen.schema_) if orders else None,
        EqualWhenSet(equal, gen.schema_) if equal else None,
        relation_set(gen),
        MissingTogether(together) if together else None,
        MissingWhenSet(when) if when else None,
    ]
    parts = [p for p in parts if p is not None]
    if len(parts) <= 1:
        return parts[0] if parts else None
    return _Checks(*parts)


def valid_rows(
    rules: Any, draw: Any, m: int, conds: dict[str, Condition]
) -> tuple[pd.DataFrame, np.ndarray]:
    """Draw ``m`` rows, drawing again the rows that break a rule.

    Rule masks make such rows impossible on the native path unless the rules contradict
    each other or the conditions; the text path relies on redrawing alone.
    """
    block, logp, bad = draw(m)
    if rules is None:
        return block, logp
    block = block.reset_index(drop=True)
    for _ in range(_MAX_REDRAWS):
        bad = bad | rules.violations(block).to_numpy().any(axis=1)
        if not bad.any():
            return block, logp
        idx = np.flatnonzero(bad)
        again, again_logp, again_bad = draw(len(idx))
        block.iloc[idx] = again.to_numpy()
        logp[idx] = again_logp
        bad = np.zeros(m, bool)
        bad[idx] = again_bad
    broken = rules.violations(block).any(axis=0)
    names = ", ".join(str(r) for r in broken[broken].index) or "the masks left no value"
    extra = (
        f" together with the conditions ({'; '.join(c.describe() for c in conds.values())})"
        if conds
        else ""
    )
    given = isinstance(rules, RuleSet) or any(
        isinstance(p, RuleSet) for p in getattr(rules, "parts", ())
    )
    advice = "check the rules file, " if given else ""
    raise ConditionError(
        f"no valid row could be drawn for {int(bad.sum())} of {m} rows: what every row must "
        f"keep ({names}){extra} cannot all hold; {advice}loosen the conditions, or fit with "
        "--column-order off / --relations off to drop the learned orders and sums"
    )
