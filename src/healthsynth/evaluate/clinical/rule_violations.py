"""Clinical rule violations.

Card
----
What: the share of synthetic rows that break at least one clinical rule (value ranges,
implications such as "sex = male ⇒ not pregnant", ICD-10-CM codes specific to one sex or age
band; see ``healthsynth.knowledge``), plus one record per rule with that rule's violation rate.
A rule that needs a column the synthetic table lacks gets a ``not_applicable`` record naming the
missing columns; the others are still scored.
Range: 0 (no row breaks a rule) to 1.
Direction: lower is better.
Reference: the same share in the real holdout when one is given, otherwise in the real training
rows (``details["reference_table"]`` says which); ``real_rate`` in the per-rule details is the
rate in that same reference table. Real data also break rules (coding errors, rules that are too
strict), so the reference is the level to compare with, not zero. The overall record carries a
95% Wilson interval for the synthetic share.
Limitations: only as good as the rules: a rule set says nothing about relations it does not
state, and a generator that enforces the rules while decoding scores zero by construction (the
figure then checks the decoder, not what the model learned). Rules check one row at a time, so
rules across rows or tables (e.g. a patient's visits in order) are out of scope.
Citation: the clinical-validity checks follow the idea of CMS's Medicare Code Editor
(sex / age conflicts between diagnosis codes and patient data), with code groups derived from
the ICD-10-CM chapter and category definitions, not the MCE edit lists.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from os import PathLike
from typing import Any

import numpy as np
import pandas as pd

from healthsynth.data import Schema
from healthsynth.evaluate._base import Measure, MetricInfo, MetricRecord, not_applicable
from healthsynth.knowledge import Rule, RuleSet, load_rules

__all__ = ["INFO", "compute"]

_NAME = "rule_violation_rate"
_DIMENSION = "clinical"
_Z95 = 1.959963984540054


INFO = MetricInfo(
    name="rule_violations",
    dimension=_DIMENSION,
    kind="table",
    summary="Clinical rule checks: how many synthetic rows break a rule, overall and per rule.",
    measures=(
        Measure(
            _NAME,
            "lower",
            "Share of synthetic rows that break at least one clinical rule (per rule in "
            "subgroups rule:NAME); the reference is the rate in real data.",
            low=0,
            high=1,
        ),
    ),
)


def _as_ruleset(rules: RuleSet | Iterable[Rule] | str | PathLike[str] | None) -> RuleSet:
    if rules is None:
        return RuleSet([])
    if isinstance(rules, RuleSet):
        return rules
    if isinstance(rules, (str, PathLike)):
        return load_rules(rules)
    return RuleSet(rules)


def _wilson(k: int, n: int) -> tuple[float, float]:
    p = k / n
    denom = 1 + _Z95**2 / n
    centre = (p + _Z95**2 / (2 * n)) / denom
    half = _Z95 * math.sqrt(p * (1 - p) / n + _Z95**2 / (4 * n * n)) / denom
    if k == 0:  # exact ends: the float arithmetic leaves 1e-20 where the bound is 0
        return 0.0, min(1.0, centre + half)
    if k == n:
        return max(0.0, centre - half), 1.0
    return max(0.0, centre - half), min(1.0, centre + half)


def _missing(rule: Rule, df: pd.DataFrame) -> list[str]:
    return [c for c in rule.columns if c not in df.columns]


def _rate(bad: np.ndarray) -> float | None:
    return float(bad.mean()) if len(bad) else None


def compute(
    *,
    real: pd.DataFrame,
    synthetic: pd.DataFrame,
    holdout: pd.DataFrame | None = None,
    schema: Schema,
    rules: RuleSet | Iterable[Rule] | str | PathLike[str] | None = None,
    seed: int = 0,
) -> list[MetricRecord]:
    """Share of synthetic rows that break at least one rule (lower is better), and per rule.

    Parameters
    ----------
    real
        Real training rows.
    synthetic
        Synthetic rows to score.
    holdout
        Real rows not used for training; when given they are the reference instead of ``real``.
    schema
        Schema of the tables (not needed by this metric; part of the metric contract).
    rules
        A :class:`~healthsynth.knowledge.RuleSet`, rules, or the path of a YAML rule file.
    seed
        Unused: the metric is deterministic.

    Returns
    -------
    list of MetricRecord
        The overall record first (``subgroup`` None), then one per rule
        (``subgroup="rule:<name>"``).
    """
    ruleset = _as_ruleset(rules)
    if len(ruleset) == 0:
        return [
            not_applicable(
                "rule_violations", _DIMENSION, "no rules given (pass --rules RULES.yaml)"
            )
        ]

    ref_name = "holdout" if holdout is not None else "real"
    ref = holdout if holdout is not None else real

    records: list[MetricRecord] = []
    per_rule: list[dict[str, Any]] = []
    syn_any = np.zeros(len(synthetic), dtype=bool)
    ref_any = np.zeros(len(ref), dtype=bool)
    n_scored = 0
    for rule in ruleset:
        missing = _missing(rule, synthetic)
        if missing:
            record, row = _not_scored(rule, missing)
        else:
            n_scored += 1
            record, row, syn_bad, ref_bad = _scored(rule, synthetic, ref)
            syn_any |= syn_bad
            if ref_bad is not None:
                ref_any |= ref_bad
        records.append(record)
        per_rule.append(row)

    details: dict[str, Any] = {
        "reference_table": ref_name,
        "n_synthetic_rows": len(synthetic),
        "n_rules": len(ruleset),
        "n_rules_scored": n_scored,
        "rules": per_rule,
    }
    overall = _overall(details, synthetic, syn_any, ref_any)
    return [overall, *records]


def _not_scored(rule: Rule, missing: list[str]) -> tuple[MetricRecord, dict[str, Any]]:
    """The record and summary row of a rule that needs columns the synthetic table lacks."""
    why = f"rule '{rule.name}' needs columns the synthetic table lacks: {', '.join(missing)}"
    record = not_applicable(
        _NAME,
        _DIMENSION,
        why,
        direction="lower",
        subgroup=f"rule:{rule.name}",
        details={"missing_columns": missing},
    )
    row = {
        "name": rule.name,
        "description": rule.description,
        "source": rule.source,
        "status": "not_applicable",
        "missing_columns": missing,
    }
    return record, row


def _scored(
    rule: Rule, synthetic: pd.DataFrame, ref: pd.DataFrame
) -> tuple[MetricRecord, dict[str, Any], np.ndarray, np.ndarray | None]:
    """The record and summary row of one rule, and the rows of each table that break it.

    The reference rows are None when the reference table lacks a column the rule needs.
    """
    syn_bad = rule.violations(synthetic)
    applicable = int(rule.applies(synthetic).sum())
    real_rate = None
    ref_bad = None
    if not _missing(rule, ref):
        ref_bad = rule.violations(ref)
        real_rate = _rate(ref_bad)
    syn_rate = _rate(syn_bad)
    row: dict[str, Any] = {
        "name": rule.name,
        "description": rule.description,
        "source": rule.source,
        "synthetic_violations": int(syn_bad.sum()),
        "synthetic_rate": syn_rate,
        "real_rate": real_rate,
        "applicable_rows": applicable,
    }
    record = MetricRecord(
        name=_NAME,
        dimension=_DIMENSION,
        value=syn_rate,
        direction="lower",
        subgroup=f"rule:{rule.name}",
        reference=real_rate,
        details=dict(row),
    )
    return record, row, syn_bad, ref_bad


def _overall(
    details: dict[str, Any], synthetic: pd.DataFrame, syn_any: np.ndarray, ref_any: np.ndarray
) -> MetricRecord:
    """The share of synthetic rows that break at least one of the rules scored."""
    if details["n_rules_scored"] == 0:
        return not_applicable(
            _NAME,
            _DIMENSION,
            "no rule can be checked: every rule needs a column the synthetic table lacks",
            direction="lower",
            details=details,
        )
    if len(synthetic) == 0:
        return not_applicable(
            _NAME, _DIMENSION, "the synthetic table has no rows", direction="lower", details=details
        )
    k = int(syn_any.sum())
    details["synthetic_rows_violating"] = k
    return MetricRecord(
        name=_NAME,
        dimension=_DIMENSION,
        value=k / len(synthetic),
        direction="lower",
        interval=_wilson(k, len(synthetic)),
        reference=_rate(ref_any),
        details=details,
    )
