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
* ``dcr``: synthetic rows' distances to their nearest and second-nearest training rows
  (the k-d tree query of :mod:`healthsynth.data._distance`); medians and NNDR over
  a seeded share of each block's rows, ``dcr_rows`` in all (100,000 by default; every row
  when asked: these queries are the costliest part of a large evaluation). Exact copies are
  counted on every row, by hashing the encoded rows. ``closer_to_train_share`` (two more
  queries per row) runs on a seeded share of each block's rows, at most ``closer_rows`` in all.
* ``tstr``: one train-on-synthetic model per block (at most ``max_train_rows`` rows, like the
  single-process metric), each scored on the real holdout; the record is the mean over blocks,
  with the 2.5–97.5 % range over blocks as its interval.
* ``rule_violations``: violations per rule and rows breaking any rule, counted per block.
"""

from __future__ import annotations

import zlib
from typing import Any

import numpy as np
import pandas as pd

from healthsynth.scale._records import (
    _ks_from_counts,  # noqa: F401 - importable from here
    records,
)
from healthsynth.scale._state import DISTRIBUTED, State, _num, build_state, row_keys

__all__ = ["DISTRIBUTED", "State", "build_state", "merge", "records", "reference", "score_block"]


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
    part: dict[str, Any] = {"d": d2[:, 0].copy(), "nndr": _nndr(d2), "copies": _copies(sx, state)}
    if state.holdout_index is not None and len(df):
        rows = _share(len(df), state.closer_fraction, rng)
        q = sx if rows is None else sx[rows]
        if len(q):
            d_tr = state.train_sub_index.kneighbors(q, n_neighbors=1)[0][:, 0]
            d_ho = state.holdout_index.kneighbors(q, n_neighbors=1)[0][:, 0]
            part["closer"] = float(np.sum(d_tr < d_ho) + 0.5 * np.sum(d_tr == d_ho))
            part["closer_n"] = len(q)
    return part


def _copies(sx: np.ndarray, state: State) -> int:
    """How many of the encoded rows ``sx`` equal a training row (every row, exact).

    A hash of each row finds the candidates; each candidate is then compared with the training
    rows of its hash, so a hash collision cannot count as a copy.
    """
    if state.copy_keys is None or not len(sx) or not len(state.copy_keys):
        return 0
    keys = row_keys(sx)
    lo = np.searchsorted(state.copy_keys, keys, side="left")
    hi = np.searchsorted(state.copy_keys, keys, side="right")
    one = np.flatnonzero(hi - lo == 1)  # the usual hit: one training row with that hash
    found = int((state.copy_rows[lo[one]] == sx[one]).all(axis=1).sum())
    for i in np.flatnonzero(hi - lo > 1):  # training rows sharing a hash (duplicates)
        found += int((state.copy_rows[lo[i] : hi[i]] == sx[i]).all(axis=1).any())
    return found


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
            "copies": sum(p.get("copies", 0) for p in dcr),
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
