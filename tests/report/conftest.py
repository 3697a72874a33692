"""Hand-made evaluation records carrying every detail key the report plots.

They are plain dicts, as ``healthsynth.evaluate`` returns them, so the report tests do not wait
for the metrics that will produce these details.
"""

from __future__ import annotations

from typing import Any

import pytest

XSS = "<script>alert(1)</script>"


def record(name: str, dimension: str, value: float | None, **fields: Any) -> dict[str, Any]:
    rec: dict[str, Any] = {
        "name": name,
        "dimension": dimension,
        "value": value,
        "direction": "higher",
        "subgroup": None,
        "interval": None,
        "reference": None,
        "seconds": 0.01,
        "details": {},
        "status": "ok",
        "message": None,
    }
    rec.update(fields)
    return rec


def plot_records(column: str = XSS) -> list[dict[str, Any]]:
    """Records whose details feed every plot and table; they make exactly 7 plots."""
    distributions = {
        column: {
            "kind": "numeric",
            "labels": ["10-20", "20-30", "30-40", "40-50"],
            "real": [0.1, 0.4, 0.3, 0.2],
            "synthetic": [0.15, 0.35, 0.3, 0.2],
            "holdout": [0.12, 0.38, 0.3, 0.2],
        },
        "sex": {
            "kind": "categorical",
            "labels": ["f", "m", "<b>other</b>"],
            "real": [0.5, 0.45, 0.05],
            "synthetic": [0.55, 0.43, 0.02],
            "holdout": None,
        },
        "cost $ (usd)": {
            "kind": "numeric",
            "labels": ["$0", "$100"],
            "real": [0.7, 0.3],
            "synthetic": [0.6, 0.4],
            "holdout": None,
        },
    }
    cols = [column, "sex", "age"]
    diff = [[None, 0.1, -0.2], [0.1, None, 0.05], [-0.2, 0.05, None]]
    return [
        record(
            "column_distance",
            "fidelity",
            0.08,
            direction="lower",
            reference=0.05,
            interval=[0.06, 0.1],
            details={"distributions": distributions},
        ),
        record(
            "dependence_difference",
            "fidelity",
            0.12,
            direction="lower",
            reference=0.04,
            details={"columns": cols, "real": diff, "synthetic": diff, "difference": diff},
        ),
        record(
            "dcr_median_ratio",
            "privacy",
            1.05,
            reference=1.0,
            interval=[0.9, 1.2],
            details={
                "histogram": {
                    "edges": [0.0, 0.5, 1.0, 1.5, 2.0],
                    "synthetic": [0.1, 0.4, 0.3, 0.2],
                    "holdout": [0.15, 0.35, 0.3, 0.2],
                }
            },
        ),
        record("tstr_auc", "utility", 0.78, reference=0.82, interval=[0.7, 0.85]),
        record("importance_agreement", "utility", 0.9, reference=None),
        record("subgroup_utility", "fairness", 0.7, reference=0.8, subgroup="sex=f"),
        record("subgroup_utility", "fairness", 0.75, reference=0.78, subgroup=f"{XSS}=1"),
        record(
            "rule_violation_rate",
            "clinical",
            0.02,
            direction="lower",
            reference=0.0,
            details={
                "rules": [
                    {
                        "name": "no-preg",
                        "description": f"sex = m implies no pregnancy {XSS}",
                        "source": "healthsynth.knowledge",
                        "synthetic_violations": 4,
                        "synthetic_rate": 0.02,
                        "real_rate": 0.0,
                        "applicable_rows": 200,
                    }
                ]
            },
        ),
        record("rule_violation_rate", "clinical", 0.0, direction="lower", subgroup="rule:no-preg"),
        record("train_seconds", "cost", 12.5, direction="lower", details={"unit": "s"}),
        record("peak_memory", "cost", 512.0, direction="lower", details={"unit": "MiB"}),
        record(
            "membership_inference",
            "privacy",
            None,
            status="failed",
            message=f"ValueError: column {XSS} has no rows",
        ),
        record(
            "coverage",
            "diversity",
            None,
            status="not_applicable",
            message="no categorical column",
        ),
    ]


PLOTS_IN_RECORDS = 7


@pytest.fixture
def hand_result() -> dict[str, Any]:
    return {
        "records": plot_records(),
        "seconds": 1.5,
        "meta": {
            "real": {"rows": 200, "columns": 8, "source": "MASS/Pima.tr"},
            "synthetic": {"rows": 200, "columns": 8, "source": "tabular-lm"},
            "holdout": None,
            "target": "type",
            "sensitive": [XSS],
            "versions": {"healthsynth": "0.1.0", "python": "3.11"},
            "created": "2025-01-01T00:00:00+00:00",
            "seed": 0,
            "model": {"generator": "tabular_lm", "n_layer": 2},
            "warnings": [f"column {XSS} looks like an identifier"],
        },
    }
