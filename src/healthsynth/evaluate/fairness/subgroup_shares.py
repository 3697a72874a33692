"""Subgroup shares: whether patient groups are represented as in the real data.

Card
----
What: for each sensitive column (schema role ``sensitive``; ``--sensitive`` at the CLI), the
share of rows in each subgroup (category, or quartile of a numeric column) among the real and
the synthetic rows. One record per subgroup: value = synthetic share, reference = real share
(direction "target": the closer the better); and one record per column: the total-variation
distance between the two share vectors (lower is better; reference: the same distance for the
holdout).
Range: shares 0–1; distance 0–1.
Direction: a subgroup's share is a target (the closer to the real share the better); the
distance: lower is better.
Reference: the real share, for each subgroup's share; for the distance, the same distance for
the real holdout.
Not applicable without sensitive columns.
Limitations: marginal shares only; intersections of groups are not formed.
Citation: representation bias in synthetic health data, e.g. Bhanot et al. 2021 ("The problem
of fairness in synthetic healthcare data").
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from healthsynth.data import Schema
from healthsynth.evaluate._base import Measure, MetricInfo, MetricRecord, not_applicable
from healthsynth.evaluate.fairness._groups import subgroups

__all__ = ["INFO", "compute"]

NO_SENSITIVE = "no sensitive column declared (pass --sensitive COLUMN,...)"


INFO = MetricInfo(
    name="subgroup_shares",
    dimension="fairness",
    kind="table",
    summary="Whether patient groups are represented as in the real data.",
    measures=(
        Measure(
            "subgroup_share",
            "target",
            "Share of each subgroup among synthetic rows; the reference is its real share.",
            low=0,
            high=1,
        ),
        Measure(
            "subgroup_share_distance",
            "lower",
            "Total-variation distance between real and synthetic subgroup shares of a "
            "sensitive column.",
            low=0,
            high=1,
        ),
    ),
)


def compute(
    *,
    real: pd.DataFrame,
    synthetic: pd.DataFrame,
    holdout: pd.DataFrame | None = None,
    schema: Schema,
    seed: int = 0,
) -> list[MetricRecord]:
    """Per-subgroup shares and their total-variation distance per sensitive column."""
    sens = [c for c in schema.sensitive if c in real.columns]
    if not sens:
        return [not_applicable("subgroup_share", "fairness", NO_SENSITIVE, direction="target")]
    out = []
    for col in sens:
        groups = subgroups(schema, real, col)
        r = np.array([m(real).mean() for _, m in groups])
        s = np.array([m(synthetic).mean() for _, m in groups])
        for (label, _), rv, sv in zip(groups, r, s, strict=True):
            out.append(
                MetricRecord(
                    name="subgroup_share",
                    dimension="fairness",
                    value=float(sv),
                    direction="target",
                    subgroup=label,
                    reference=float(rv),
                )
            )
        ref = None
        if holdout is not None:
            h = np.array([m(holdout).mean() for _, m in groups])
            ref = 0.5 * float(np.abs(h - r).sum())
        out.append(
            MetricRecord(
                name="subgroup_share_distance",
                dimension="fairness",
                value=0.5 * float(np.abs(s - r).sum()),
                direction="lower",
                subgroup=col,
                reference=ref,
            )
        )
    return out
