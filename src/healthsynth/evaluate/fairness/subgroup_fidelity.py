"""Per-subgroup fidelity: whether the synthetic data is less realistic for some patient groups.

Card
----
What: within each subgroup of each sensitive column, the mean per-column distance
(:mod:`..fidelity.column_distance`: KS or total variation, with missing-rate gaps) between the
synthetic rows of that subgroup and the real rows of that subgroup. The sensitive column itself
is left out of the comparison.
Range: 0 to 1.
Direction: lower is better.
Reference: the same distance for the holdout rows of the subgroup — small groups have noisy
marginals, and the reference shows how noisy.
Details: ``rows`` (real, synthetic, holdout) per subgroup. Subgroups with fewer than 5 real or
synthetic rows are reported as not applicable.
Not applicable without sensitive columns.
Limitations: marginal distances only; for relations within a group use the report's overall
metrics on a filtered table.
Citation: subgroup realism as in Yan et al. 2022 (multifaceted benchmarking of synthetic EHR
generators) and Bhanot et al. 2021.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pandas as pd

from healthsynth.data import Schema
from healthsynth.evaluate._base import Measure, MetricInfo, MetricRecord, not_applicable
from healthsynth.evaluate.fairness._groups import subgroups
from healthsynth.evaluate.fairness.subgroup_shares import NO_SENSITIVE
from healthsynth.evaluate.fidelity.column_distance import column_distances

__all__ = ["INFO", "compute"]

_MIN_ROWS = 5


INFO = MetricInfo(
    name="subgroup_fidelity",
    dimension="fairness",
    kind="table",
    summary="Whether the synthetic data is less realistic for some patient groups.",
    measures=(
        Measure(
            "subgroup_column_distance",
            "lower",
            "Column distance measured within each subgroup; the reference is the holdout's "
            "distance within the same subgroup.",
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
    """Mean column distance within each subgroup (lower is better)."""
    sens = [c for c in schema.sensitive if c in real.columns]
    if not sens:
        return [not_applicable("subgroup_column_distance", "fairness", NO_SENSITIVE)]
    out = []
    for col in sens:
        sub_schema = replace(schema, columns=tuple(c for c in schema.columns if c.name != col))
        for label, mask in subgroups(schema, real, col):
            r, s = real[mask(real)], synthetic[mask(synthetic)]
            h = holdout[mask(holdout)] if holdout is not None else None
            rows = {"real": len(r), "synthetic": len(s), "holdout": None if h is None else len(h)}
            if len(r) < _MIN_ROWS or len(s) < _MIN_ROWS:
                out.append(
                    not_applicable(
                        "subgroup_column_distance",
                        "fairness",
                        f"fewer than {_MIN_ROWS} real or synthetic rows in this subgroup",
                        subgroup=label,
                        direction="lower",
                        details={"rows": rows},
                    )
                )
                continue
            value = float(np.mean(list(column_distances(r, s, sub_schema).values()) or [0.0]))
            ref = None
            if h is not None and len(h) >= _MIN_ROWS:
                ref = float(np.mean(list(column_distances(r, h, sub_schema).values()) or [0.0]))
            out.append(
                MetricRecord(
                    name="subgroup_column_distance",
                    dimension="fairness",
                    value=value,
                    direction="lower",
                    subgroup=label,
                    reference=ref,
                    details={"rows": rows},
                )
            )
    return out
