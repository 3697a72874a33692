"""Structure of the real rows that synthetic rows break: orders between dates, exact sums.

Card
----
What: the share of synthetic rows that break at least one relation that holds in *every* real
training row: an order between two numeric or two date columns ("accept.dt <= fu.date", kept
only when the columns' ranges do not already make it certain) or an exact sum ("fu.date =
accept.dt + futime", "wt82 = wt71 + wt82_71") or a group of columns missing on exactly the same
rows (a transplant date and the wait before it), or missing exactly when a category has one
value ("tx.date, wait.time missing exactly when transplant is 0", a death date exactly for the
living), or two ordered columns equal whenever a category has one value ("ptime = futime when
pstat is 0"), learned with
:func:`healthsynth.knowledge.learn_orders`, :func:`healthsynth.knowledge.learn_relations`,
:func:`healthsynth.knowledge.learn_missing_together`,
:func:`healthsynth.knowledge.learn_missing_when` and
:func:`healthsynth.knowledge.learn_equal_when`; plus one record per relation (subgroups
``order:…``, ``equal:…``, ``sum:…`` and ``missing:…``). Nothing needs to be given:
the relations come from the real rows, so every generator is held to the same ones.
Range: 0 (every synthetic row keeps every relation) to 1.
Direction: lower is better.
Reference: the same share in the real holdout when one is given (rows the relations were not
learned on; a share above 0 there means a relation is not as firm as the training rows made it
look), otherwise 0, the training rows' share by construction.
Limitations: only relations between two or three columns of one row, in the two forms above;
a relation that holds in the training rows by chance is held against the synthetic rows too
(orders are kept only when at least 10 training rows would have broken them by chance, sums
only to within the columns' rounding). A generator that keeps these relations while decoding
(tabular-lm by default) scores zero by construction: the figure then checks the decoder.
Citation: date-order and derived-field checks are standard edit checks of clinical data
management (e.g. the consistency checks of the OMOP Data Quality Dashboard); the learning rule
is this project's.
"""

from __future__ import annotations

from typing import Any

import pandas as pd

from healthsynth.data import Schema
from healthsynth.evaluate._base import Measure, MetricInfo, MetricRecord, not_applicable
from healthsynth.evaluate.clinical.rule_violations import _wilson
from healthsynth.knowledge import (
    EqualWhenSet,
    MissingTogether,
    MissingWhenSet,
    OrderSet,
    RelationSet,
    learn_equal_when,
    learn_missing_together,
    learn_missing_when,
    learn_orders,
    learn_relations,
)

__all__ = ["INFO", "compute"]

_NAME = "structure_violation_rate"
_DIMENSION = "clinical"

INFO = MetricInfo(
    name="structure_violations",
    dimension=_DIMENSION,
    kind="table",
    summary="Orders between dates and exact sums that hold in every real row: how many "
    "synthetic rows break one, overall and per relation.",
    measures=(
        Measure(
            _NAME,
            "lower",
            "Share of synthetic rows that break at least one order or exact sum that holds in "
            "every real training row (per relation in subgroups order:…, equal:…, sum:… and "
            "missing:…); the "
            "reference is the holdout's share.",
            low=0,
            high=1,
        ),
    ),
)


def _relations(real: pd.DataFrame, schema: Schema, usable: set[str]) -> tuple[list[Any], ...]:
    """The relations learned from ``real`` whose columns are all in ``usable``.

    Orders, equalities, sums, columns missing together and missing-when rules, in that order.
    """
    orders, _ = learn_orders(real, schema)
    sums, _ = learn_relations(real, schema)
    groups, _ = learn_missing_together(real, schema)
    orders = [o for o in orders if {o.low, o.high} <= usable]
    equal, _ = learn_equal_when(real, schema, orders)
    equal = [e for e in equal if e.by in usable]
    sums = [r for r in sums if set(r.columns) <= usable]
    groups = [g for g in groups if set(g) <= usable]
    when, _ = learn_missing_when(real, schema, groups)
    when = [m for m in when if {*m.columns, m.by} <= usable]
    return orders, equal, sums, groups, when


def compute(
    *,
    real: pd.DataFrame,
    synthetic: pd.DataFrame,
    holdout: pd.DataFrame | None = None,
    schema: Schema,
    seed: int = 0,
) -> list[MetricRecord]:
    """Share of synthetic rows that break a learned order or sum (lower is better), and per one.

    Parameters
    ----------
    real
        Real training rows: the relations are learned from them.
    synthetic
        Synthetic rows to score.
    holdout
        Real rows not used for training: their share is the reference.
    schema
        Schema of the tables (which columns are numbers and dates).
    seed
        Unused: the metric is deterministic.

    Returns
    -------
    list of MetricRecord
        The overall record first (``subgroup`` None), then one per relation.
    """
    orders, equal, sums, groups, when = _relations(real, schema, set(synthetic.columns))
    if not orders and not sums and not groups and not when:
        return [
            not_applicable(
                "structure_violations",
                _DIMENSION,
                "the real rows hold no order between columns, no exact sum and no columns "
                "missing together to check",
                direction="lower",
            )
        ]
    if len(synthetic) == 0:
        return [
            not_applicable(_NAME, _DIMENSION, "the synthetic table has no rows", direction="lower")
        ]
    checks = [
        OrderSet(orders, schema),
        EqualWhenSet(equal, schema),
        RelationSet(sums, schema, ranges={}),
        MissingTogether(groups),
        MissingWhenSet(when),
    ]
    syn = pd.concat([c.violations(synthetic) for c in checks], axis=1)
    needed = {c for o in orders for c in (o.low, o.high)} | {c for r in sums for c in r.columns}
    needed |= {c for g in groups for c in g} | {e.by for e in equal}
    needed |= {c for m in when for c in (*m.columns, m.by)}
    ref = None
    if holdout is not None and needed <= set(holdout.columns):
        ref = pd.concat([c.violations(holdout) for c in checks], axis=1)
    kinds = ["order"] * len(orders) + ["equal"] * len(equal) + ["sum"] * len(sums)
    kinds += ["missing"] * (len(groups) + len(when))
    records, rows = [], []
    for kind, name in zip(kinds, syn.columns, strict=True):
        rate = float(syn[name].mean()) if len(syn) else None
        real_rate = float(ref[name].mean()) if ref is not None and len(ref) else 0.0
        row: dict[str, Any] = {
            "relation": name,
            "kind": kind,
            "synthetic_violations": int(syn[name].sum()),
            "synthetic_rate": rate,
            "real_rate": real_rate,
        }
        rows.append(row)
        records.append(
            MetricRecord(
                name=_NAME,
                dimension=_DIMENSION,
                value=rate,
                direction="lower",
                subgroup=f"{kind}:{name}",
                reference=real_rate,
                details=dict(row),
            )
        )
    bad = syn.to_numpy().any(axis=1)
    k = int(bad.sum())
    overall = MetricRecord(
        name=_NAME,
        dimension=_DIMENSION,
        value=k / len(synthetic),
        direction="lower",
        interval=_wilson(k, len(synthetic)),
        reference=float(ref.to_numpy().any(axis=1).mean()) if ref is not None else 0.0,
        details={
            "reference_table": "holdout" if ref is not None else "real (0 by construction)",
            "n_synthetic_rows": len(synthetic),
            "synthetic_rows_violating": k,
            "relations": rows,
            "n_orders": len(orders),
            "n_equal_when": len(equal),
            "n_sums": len(sums),
            "n_missing_together": len(groups),
            "n_missing_when": len(when),
        },
    )
    return [overall, *records]
