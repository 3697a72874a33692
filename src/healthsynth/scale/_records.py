"""The records of the distributed metrics, from the merged block partials.

:func:`records` turns the sums that :func:`healthsynth.scale._partials.merge` adds up into the
same records the single-process metrics return (same names, same ``details`` keys, so the
report draws them the same way), marked with how many rows they cover.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from healthsynth.evaluate._base import MetricRecord, not_applicable
from healthsynth.scale._state import _PLOT_BINS, State, _num

__all__ = ["records"]


def _ks_from_counts(
    grid_counts: dict[str, Any], real_sorted: np.ndarray, grid: np.ndarray
) -> float:
    """Exact KS between the real values and the synthetic values summarised by their counts."""
    n_syn = grid_counts["n"]
    if len(real_sorted) == 0 or n_syn == 0:
        return 0.0 if len(real_sorted) == n_syn == 0 else 1.0
    fr = np.searchsorted(real_sorted, grid, side="right") / len(real_sorted)
    fr_before = np.searchsorted(real_sorted, grid, side="left") / len(real_sorted)
    fs = grid_counts["le"] / n_syn
    fs_before = grid_counts["lt"] / n_syn
    gaps = np.concatenate([np.abs(fr - fs), np.abs(fr_before - fs_before), [1.0 - fs[-1]]])
    return float(np.max(gaps))


def records(
    total: dict[str, Any],
    state: State,
    *,
    ref: dict[str, Any],
    real: pd.DataFrame,
    holdout: pd.DataFrame | None,
    seconds: float,
) -> dict[str, list[MetricRecord]]:
    """The records of each distributed metric from the merged partials and :func:`reference`."""
    out: dict[str, list[MetricRecord]] = {}
    note = {"synthetic_rows_scored": total["rows"], "engine_blocks": "all rows"}
    total = {**total, "reference": ref}
    if "column_distance" in state.metrics:
        out["column_distance"] = _column_records(total, state, real, holdout, note)
    if "dcr" in state.metrics:
        out["dcr"] = _dcr_records(total, state, real, holdout, note)
    if "tstr" in state.metrics:
        out["tstr"] = _tstr_records(total, state, real, holdout, note)
    if "rule_violations" in state.metrics:
        out["rule_violations"] = _rule_records(total, state, real, holdout, note)
    for recs in out.values():
        for r in recs:
            r.seconds = round(seconds, 3)
    return out


def _column_records(total, state, real, holdout, note) -> list[MetricRecord]:  # noqa: ANN001
    merged = total["column_distance"]
    per: dict[str, float] = {}
    for c in state.schema.modelled:
        m = merged.get(c.name)
        if m is None:
            continue
        n_syn = m["present"] + m["missing"]
        real_col = real[c.name]
        miss_gap = abs(float(real_col.isna().mean()) - m["missing"] / max(n_syn, 1))
        present = real_col.dropna()
        if c.name in state.grids:
            xr = _num(present, c.kind)
            xr = np.sort(xr[np.isfinite(xr)])
            d = _ks_from_counts(m, xr, state.grids[c.name]) if len(state.grids[c.name]) else 1.0
        else:
            fa = present.astype(str).value_counts(normalize=True)
            fb = pd.Series(m["counts"], dtype=float)
            fb = fb / fb.sum() if fb.sum() else fb
            d = 0.5 * float(fa.sub(fb, fill_value=0).abs().sum()) if len(fb) else 1.0
        per[c.name] = max(d, miss_gap)
    ref_per = total["reference"].get("column_distance")
    ref = float(np.mean(list(ref_per.values()))) if ref_per else None
    return [
        MetricRecord(
            name="column_distance",
            dimension="fidelity",
            value=float(np.mean(list(per.values()))) if per else None,
            direction="lower",
            reference=ref,
            details={
                "per_column": per,
                "per_column_reference": ref_per,
                "distributions": _plots(merged, real, holdout, state),
                **note,
            },
        )
    ]


def _plots(merged: dict, real: pd.DataFrame, holdout: pd.DataFrame | None, state: State) -> dict:
    """The report's plot data (as ``column_distance.distributions``), synthetic from counts."""
    from healthsynth.evaluate.fidelity.column_distance import distributions

    out: dict[str, Any] = distributions(real, real.iloc[:0], holdout, state.schema)
    for name, entry in out.items():
        m = merged.get(name)
        if m is None:
            continue
        n_syn = m["present"] + m["missing"]
        labels = list(entry["labels"])
        has_missing = bool(labels) and labels[-1] == "(missing)"
        if m["missing"] and not has_missing:
            labels.append("(missing)")
            for k in ("real", "holdout"):
                if entry.get(k) is not None:
                    entry[k] = [*entry[k], 0.0]
            has_missing = True
        if name in state.grids:
            counts = [float(v) for v in m.get("hist", np.zeros(_PLOT_BINS))]
        else:
            top = state.top.get(name, [])
            counts = [float(m["counts"].get(t, 0)) for t in top]
            if "(other)" in labels:
                counts.append(float(sum(v for k, v in m["counts"].items() if k not in top)))
        if has_missing:
            counts.append(float(m["missing"]))
        entry["labels"] = labels
        entry["synthetic"] = [v / max(n_syn, 1) for v in counts]
    return out


def _dcr_records(total, state, real, holdout, note) -> list[MetricRecord]:  # noqa: ANN001
    from healthsynth.evaluate.privacy.dcr import _bootstrap_ratio, dcr_records

    d, nndr = total["dcr"]["d"], total["dcr"]["nndr"]
    sizes = {
        "n_synthetic": len(d),
        "n_synthetic_total": total["rows"],
        "n_train": len(real),
        **note,
        "synthetic_rows_scored": len(d),
    }
    if holdout is None or len(holdout) == 0 or state.holdout_index is None:
        return [
            MetricRecord(
                name="dcr_median",
                dimension="privacy",
                value=float(np.median(d)),
                direction="higher",
                details=sizes,
                message="no holdout: the ratio to fresh real data is unavailable",
            )
        ]
    d2_hold = total["reference"]["d2_hold"]
    sizes.update(n_holdout=len(holdout), n_holdout_total=len(holdout))
    closer_n = total["dcr"]["closer_n"]
    return dcr_records(
        d,
        nndr,
        d2_hold,
        interval=_bootstrap_ratio(d, d2_hold[:, 0], np.random.default_rng(state.seed)),
        closer=total["dcr"]["closer"] / closer_n if closer_n else None,
        sizes=sizes,
        closer_details={
            **sizes,
            "n_synthetic": closer_n,
            "n_train_subsample": min(len(holdout), len(real)),
        },
        copies=(int(total["dcr"].get("copies", 0)), int(total["rows"])),
    )


def _tstr_records(total, state, real, holdout, note) -> list[MetricRecord]:  # noqa: ANN001
    if state.tstr_why_not is not None:
        return [not_applicable("tstr", "utility", state.tstr_why_not)]
    per_block = total.get("tstr", {})
    ref_scores = total["reference"]["tstr"]
    out = []
    for name, values in per_block.items():
        v = np.asarray(values, float)
        v = v[np.isfinite(v)]
        reference = ref_scores[name]
        value = float(np.mean(v)) if len(v) else None
        interval = (
            (float(np.percentile(v, 2.5)), float(np.percentile(v, 97.5)))
            if len(v) > 1 and name != "ece"
            else None
        )
        out.append(
            MetricRecord(
                name=f"tstr_{name}",
                dimension="utility",
                value=value,
                direction="lower" if name == "ece" else "higher",
                interval=interval,
                reference=reference,
                details={
                    "target": state.schema.target,
                    "train_on_real": reference,
                    "gap": reference - value if value is not None else None,
                    "test_rows": total["reference"]["tstr_test_rows"],
                    "blocks": len(values),
                    "per_block_min": float(np.min(v)) if len(v) else None,
                    "per_block_max": float(np.max(v)) if len(v) else None,
                    "statistic": "mean over blocks of one model per block",
                    **note,
                },
            )
        )
    return out


def _rule_records(total, state, real, holdout, note) -> list[MetricRecord]:  # noqa: ANN001
    from healthsynth.evaluate.clinical.rule_violations import compute

    if state.rules is None or len(state.rules) == 0:
        return [
            not_applicable(
                "rule_violations", "clinical", "no rules given (pass --rules RULES.yaml)"
            )
        ]
    # the reference side (and the records' shape) from the single-process metric on the
    # holdout alone, then the synthetic figures replaced by the counts over every block
    base = compute(
        real=real,
        synthetic=(holdout if holdout is not None else real),
        holdout=holdout,
        schema=state.schema,
        rules=state.rules,
    )
    merged = total.get("rule_violations", {"per_rule": {}, "any": 0})
    n = total["rows"]
    from healthsynth.evaluate.clinical.rule_violations import _wilson

    for r in base:
        r.details = {**r.details, **note}
        if r.status != "ok":
            continue
        if r.subgroup is None:
            k = merged["any"]
            r.value = k / n if n else None
            r.interval = _wilson(k, n) if n else None
            r.details["synthetic_rows_violating"] = k
            r.details["n_synthetic_rows"] = n
            for row in r.details.get("rules", []):
                got = merged["per_rule"].get(row["name"])
                if got is not None:
                    row.update(
                        synthetic_violations=got[0],
                        synthetic_rate=got[0] / n,
                        applicable_rows=got[1],
                    )
        else:
            name = r.subgroup.removeprefix("rule:")
            got = merged["per_rule"].get(name)
            if got is not None:
                r.value = got[0] / n if n else None
                r.details.update(
                    synthetic_violations=got[0], synthetic_rate=r.value, applicable_rows=got[1]
                )
    return base
