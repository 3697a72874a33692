"""The per-block halves of the metrics that scale-out evaluation runs over every synthetic row.

:func:`build_state` prepares, once on the driver, what scoring a block needs (the real values'
grid per column, the fitted row encoder and nearest-neighbour index of the training rows, the
holdout, the rules); :func:`score_block` computes one block's partial result on a worker;
:func:`merge` adds the partials up and :func:`records` turns the sums into the same records the
single-process metrics return (same names, same ``details`` keys, so the report draws them the
same way), marked with how many rows they cover.

* ``column_distance``: exact. The Kolmogorov–Smirnov statistic between the real and the whole
  synthetic column is the largest gap between the two empirical CDFs; between two consecutive
  distinct real values the real CDF is flat, so the gap is largest at one of them or just
  before one. Each block counts its values ``≤`` and ``<`` each distinct real value; the sums
  give the synthetic CDF there exactly. Categories are counted; missing values are counted.
* ``dcr``: every synthetic row's distance to its nearest and second-nearest training row
  (the k-d tree query of :mod:`healthsynth.data._distance`); medians, exact copies and NNDR over
  all rows (or over a seeded share of each block, ``dcr_rows`` in all, when asked: these
  queries are the costliest part of a large evaluation). ``closer_to_train_share`` (two more
  queries per row) runs on a seeded share of each block's rows, at most ``closer_rows`` in all.
* ``tstr``: one train-on-synthetic model per block (at most ``max_train_rows`` rows, like the
  single-process metric), each scored on the real holdout; the record is the mean over blocks,
  with the 2.5–97.5 % range over blocks as its interval.
* ``rule_violations``: violations per rule and rows breaking any rule, counted per block.
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from healthsynth.data import Schema
from healthsynth.evaluate._base import MetricRecord, not_applicable

__all__ = ["DISTRIBUTED", "State", "build_state", "merge", "records", "reference", "score_block"]

#: the metrics computed over every synthetic row (the others run on a subsample)
DISTRIBUTED = ("column_distance", "dcr", "tstr", "rule_violations")
_NUMERIC = ("numeric", "integer", "datetime")
_PLOT_BINS = 20
_PLOT_CATEGORIES = 15


@dataclass
class State:
    """What every block's scoring shares (built once, sent to the workers once)."""

    schema: Schema
    names: list[str]
    metrics: tuple[str, ...]
    seed: int
    grids: dict[str, np.ndarray] = field(default_factory=dict)
    edges: dict[str, np.ndarray] = field(default_factory=dict)
    top: dict[str, list[str]] = field(default_factory=dict)
    encoder: Any = None
    index: Any = None
    train_sub_index: Any = None
    holdout_index: Any = None
    closer_fraction: float = 1.0
    dcr_fraction: float = 1.0
    holdout: pd.DataFrame | None = None
    max_train_rows: int = 20_000
    rules: Any = None
    tstr_why_not: str | None = None


def _num(s: pd.Series, kind: str) -> np.ndarray:
    if kind == "datetime":
        t = pd.to_datetime(s, errors="coerce")
        x = t.astype("int64").to_numpy(float)
        return np.where(t.isna().to_numpy(), np.nan, x)
    return pd.to_numeric(s, errors="coerce").to_numpy(float)


def build_state(
    *,
    real: pd.DataFrame,
    holdout: pd.DataFrame | None,
    schema: Schema,
    metrics: tuple[str, ...],
    seed: int,
    rules: Any,
    total_rows: int,
    closer_rows: int,
    dcr_rows: int | None = None,
) -> State:
    """Everything :func:`score_block` needs, from the prepared real and holdout tables."""
    state = State(schema=schema, names=list(real.columns), metrics=metrics, seed=seed)
    if "column_distance" in metrics:
        for c in schema.modelled:
            if c.name not in real.columns:
                continue
            present = real[c.name].dropna()
            if c.kind in _NUMERIC:
                x = _num(present, c.kind)
                x = x[np.isfinite(x)]
                state.grids[c.name] = np.unique(x)
                if len(x):
                    lo, hi = float(x.min()), float(x.max())
                    state.edges[c.name] = np.linspace(lo, hi if hi > lo else lo + 1, _PLOT_BINS + 1)
            else:
                shares = present.astype(str).value_counts()
                state.top[c.name] = shares.index[:_PLOT_CATEGORIES].tolist()
    if "dcr" in metrics:
        from healthsynth.data._distance import RowEncoder, neighbour_index

        state.encoder = RowEncoder(schema).fit(real)
        rx = state.encoder.transform(real)
        state.index = neighbour_index(rx)
        if dcr_rows is not None:
            state.dcr_fraction = min(1.0, dcr_rows / max(total_rows, 1))
        if holdout is not None and len(holdout):
            rng = np.random.default_rng(seed)
            sub = rng.choice(len(real), size=min(len(holdout), len(real)), replace=False)
            state.train_sub_index = neighbour_index(rx[np.sort(sub)])
            state.holdout_index = neighbour_index(state.encoder.transform(holdout))
            state.closer_fraction = min(1.0, closer_rows / max(total_rows, 1))
    if "tstr" in metrics:
        from healthsynth.evaluate.utility.tstr import why_not

        state.tstr_why_not = why_not(schema, real, holdout)
        state.holdout = holdout
    if "rule_violations" in metrics:
        state.rules = rules
    return state


def _block_seed(state: State, key: str, n: int) -> int:
    return int(
        np.random.SeedSequence([state.seed, zlib.crc32(key.encode()), n]).generate_state(1)[0]
    )


def score_block(df: pd.DataFrame, state: State, key: str) -> dict[str, Any]:
    """One block's partial result (``df``: the block's rows, aligned to the schema)."""
    from healthsynth.evaluate._prepare import _coerce

    df = df.reset_index(drop=True)
    for c in state.schema.modelled:
        if c.name in df.columns:
            df[c.name] = _coerce(df[c.name], c.kind, c.name, c.categories)[0]
    out: dict[str, Any] = {"rows": len(df)}
    if "column_distance" in state.metrics:
        out["column_distance"] = _columns(df, state)
    if "dcr" in state.metrics:
        out["dcr"] = _dcr(df, state, _block_seed(state, key, len(df)))
    if "tstr" in state.metrics and state.tstr_why_not is None and len(df):
        out["tstr"] = _tstr(df, state, _block_seed(state, key, len(df)))
    if "rule_violations" in state.metrics and state.rules is not None:
        out["rule_violations"] = _rules(df, state)
    return out


def _columns(df: pd.DataFrame, state: State) -> dict[str, Any]:
    parts: dict[str, Any] = {}
    for c in state.schema.modelled:
        if c.name not in df.columns:
            continue
        s = df[c.name]
        part: dict[str, Any] = {"missing": int(s.isna().sum()), "present": int(s.notna().sum())}
        if c.name in state.grids:
            x = _num(s.dropna(), c.kind)
            x = np.sort(x[np.isfinite(x)])
            grid = state.grids[c.name]
            part["le"] = np.searchsorted(x, grid, side="right").astype(np.int64)
            part["lt"] = np.searchsorted(x, grid, side="left").astype(np.int64)
            part["n"] = len(x)
            edges = state.edges.get(c.name)
            if edges is not None:
                part["hist"] = np.histogram(np.clip(x, edges[0], edges[-1]), bins=edges)[0]
        else:
            part["counts"] = s.dropna().astype(str).value_counts().to_dict()
        parts[c.name] = part
    return parts


def _share(n: int, fraction: float, rng: np.random.Generator) -> np.ndarray | None:
    """A seeded ``fraction`` of ``n`` row positions, sorted (None: all of them)."""
    m = int(round(fraction * n))
    return np.sort(rng.choice(n, size=m, replace=False)) if m < n else None


def _dcr(df: pd.DataFrame, state: State, seed: int) -> dict[str, Any]:
    sx = state.encoder.transform(df)
    rng = np.random.default_rng(seed)
    rows = _share(len(df), state.dcr_fraction, rng)
    q = sx if rows is None else sx[rows]
    k = min(2, state.index.n_samples_fit_)
    d2 = state.index.kneighbors(q, n_neighbors=k)[0] if len(q) else np.zeros((0, k))
    part: dict[str, Any] = {"d": d2[:, 0].copy(), "nndr": _nndr(d2)}
    if state.holdout_index is not None and len(df):
        rows = _share(len(df), state.closer_fraction, rng)
        q = sx if rows is None else sx[rows]
        if len(q):
            d_tr = state.train_sub_index.kneighbors(q, n_neighbors=1)[0][:, 0]
            d_ho = state.holdout_index.kneighbors(q, n_neighbors=1)[0][:, 0]
            part["closer"] = float(np.sum(d_tr < d_ho) + 0.5 * np.sum(d_tr == d_ho))
            part["closer_n"] = len(q)
    return part


def _nndr(d2: np.ndarray) -> np.ndarray:
    if d2.shape[1] < 2:
        return np.ones(len(d2))
    first, second = d2[:, 0], d2[:, 1]
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(second > 0, first / np.where(second > 0, second, 1.0), 1.0)


def _tstr(df: pd.DataFrame, state: State, seed: int) -> dict[str, float]:
    from healthsynth.evaluate.utility.tstr import fit_predict, score

    p = fit_predict(
        df, state.holdout, state.schema, seed=seed % 2**31, max_train_rows=state.max_train_rows
    )
    names = ["auc", "f1", "ece"] if p.task == "classification" else ["r2"]
    scores = {name: score(p, name) for name in names}
    if "auc" in scores and p.single_class:
        scores["auc"] = 0.5
    return scores


def _rules(df: pd.DataFrame, state: State) -> dict[str, Any]:
    per: dict[str, tuple[int, int]] = {}
    bad_any = np.zeros(len(df), dtype=bool)
    for rule in state.rules:
        if any(c not in df.columns for c in rule.columns):
            continue
        bad = rule.violations(df)
        bad_any |= bad
        per[rule.name] = (int(bad.sum()), int(rule.applies(df).sum()))
    return {"per_rule": per, "any": int(bad_any.sum())}


def reference(state: State, real: pd.DataFrame, holdout: pd.DataFrame | None) -> dict[str, Any]:
    """The holdout's side of the metrics (its DCR queries, the train-on-real model's scores).

    Independent of the synthetic blocks, so it runs beside them (one more task on Ray).
    """
    out: dict[str, Any] = {}
    if "dcr" in state.metrics and state.holdout_index is not None and holdout is not None:
        hx = state.encoder.transform(holdout)
        k = min(2, state.index.n_samples_fit_)
        out["d2_hold"] = state.index.kneighbors(hx, n_neighbors=k)[0]
    if "tstr" in state.metrics and state.tstr_why_not is None:
        from healthsynth.evaluate.utility.tstr import fit_predict, score

        ref = fit_predict(
            real, holdout, state.schema, seed=state.seed, max_train_rows=state.max_train_rows
        )
        names = ["auc", "f1", "ece"] if ref.task == "classification" else ["r2"]
        out["tstr"] = {name: score(ref, name) for name in names}
        out["tstr_test_rows"] = int(len(ref.y))
    if "column_distance" in state.metrics and holdout is not None:
        from healthsynth.evaluate.fidelity.column_distance import column_distances

        out["column_distance"] = column_distances(real, holdout, state.schema)
    return out


# -- adding blocks up -------------------------------------------------------------------------
def merge(parts: list[dict[str, Any]]) -> dict[str, Any]:
    """The sum of the blocks' partials (order does not matter: lists are sorted)."""
    total: dict[str, Any] = {"rows": sum(p["rows"] for p in parts)}
    cols = [p["column_distance"] for p in parts if "column_distance" in p]
    if cols:
        merged: dict[str, dict[str, Any]] = {}
        for part in cols:
            for name, c in part.items():
                m = merged.setdefault(name, {})
                for k, v in c.items():
                    if k == "counts":
                        acc = m.setdefault("counts", {})
                        for cat, n in v.items():
                            acc[cat] = acc.get(cat, 0) + n
                    else:
                        m[k] = m[k] + v if k in m else v
        total["column_distance"] = merged
    dcr = [p["dcr"] for p in parts if "dcr" in p]
    if dcr:
        total["dcr"] = {
            "d": np.sort(np.concatenate([p["d"] for p in dcr])),
            "nndr": np.sort(np.concatenate([p["nndr"] for p in dcr])),
            "closer": sum(p.get("closer", 0.0) for p in dcr),
            "closer_n": sum(p.get("closer_n", 0) for p in dcr),
        }
    tstr = [p["tstr"] for p in parts if "tstr" in p]
    if tstr:
        total["tstr"] = {k: sorted(t[k] for t in tstr) for k in tstr[0]}
    rules = [p["rule_violations"] for p in parts if "rule_violations" in p]
    if rules:
        per: dict[str, list[int]] = {}
        for r in rules:
            for name, (bad, applies) in r["per_rule"].items():
                acc = per.setdefault(name, [0, 0])
                acc[0] += bad
                acc[1] += applies
        total["rule_violations"] = {"per_rule": per, "any": sum(r["any"] for r in rules)}
    return total


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
