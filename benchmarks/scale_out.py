#!/usr/bin/env python
"""Benchmark: scale-out on Ray (issue 17) — sampling, evaluation and training on a local cluster.

Stages (each writes one JSON file into ``--out``):

* ``sample``: tabular-lm fitted on the real PBC table without its ID (``survival/pbc``, 19
  columns, 418 rows), saved, then ``--rows`` rows sampled with ``healthsynth.scale.sample`` on
  1 and on 2 Ray workers at the same seed: wall seconds, rows per second (whole run, and the
  blocks alone after the workers started), per-block seconds, and whether the two outputs are
  byte-identical (sha256 of every shard). Target: 2 workers ≥ 1.6 × one worker's throughput.
* ``timelines``: the same for timeline-lm on the real NAFLD cohort (patients per second and
  per-block seconds, the figures the 100-million-patient plan in docs/scale-out.md uses).
* ``evaluate``: the shards of ``sample`` (``--rows`` synthetic rows) scored with
  ``healthsynth.scale.evaluate.evaluate_shards`` on 2 Ray workers against ``--real-rows`` real
  rows and a fifth as many holdout rows, both resampled with replacement from PBC's own
  training and holdout split with 2 % noise on the continuous columns (a speed test, not a
  quality test), every default metric. Target: ≤ 5 minutes.
* ``train``: data-parallel training (``healthsynth.scale.train``) with 2 Ray workers against
  one process, same settings and seed: best validation loss of each. Target: within 2 %.

Every stage records the machine's load average before and after and the processes that were
using the CPU, because this 2-core machine is shared: a throughput ratio is only as good as the
quiet it was measured in.

    PYTHONPATH=src .venv/bin/python benchmarks/scale_out.py sample --rows 1000000
    PYTHONPATH=src .venv/bin/python benchmarks/scale_out.py evaluate --rows 1000000
    PYTHONPATH=src .venv/bin/python benchmarks/scale_out.py timelines --patients 20000
    PYTHONPATH=src .venv/bin/python benchmarks/scale_out.py train

Results: ``--out`` (default ``docs/benchmark-results/scale-out``).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
import warnings
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]


def machine() -> dict[str, Any]:
    """Load average and the processes using the CPU right now (this one left out)."""
    out = subprocess.run(
        ["ps", "-eo", "pcpu,pid,args", "--sort=-pcpu"], capture_output=True, text=True
    ).stdout.splitlines()[1:]
    busy = []
    for line in out:
        cpu, pid, args = line.strip().split(None, 2)
        if float(cpu) < 5 or int(pid) == os.getpid():
            continue
        busy.append({"cpu_percent": float(cpu), "command": args[:110]})
    return {"loadavg": [round(x, 2) for x in os.getloadavg()], "busy_processes": busy[:8]}


def environment() -> dict[str, Any]:
    from importlib.metadata import version

    return {
        "python": platform.python_version(),
        "platform": platform.platform(),
        "cpu_count": os.cpu_count(),
        "versions": {p: version(p) for p in ("ray", "torch", "numpy", "pandas", "pyarrow")},
    }


def digests(folder: Path) -> dict[str, str]:
    return {
        p.name: hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(folder.glob("part-*.parquet"))
    }


def pbc():
    from healthsynth.data import load_dataset

    return load_dataset("survival/pbc").drop(columns=["id"])


def fit_table_model(folder: Path, max_time: float) -> dict[str, Any]:
    from healthsynth.data import infer_schema
    from healthsynth.generators.tabular_lm import TabularLM

    df = pbc()
    t0 = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        gen = TabularLM(seed=0, max_time=max_time).fit(df, schema=infer_schema(df))
    gen.save(folder)
    return {
        "rows": len(df),
        "columns": df.shape[1],
        "fit_seconds": round(time.perf_counter() - t0, 1),
        "epochs_run": gen.training_record_.get("epochs_run"),
    }


def sample_runs(model: Path, n: int, out: Path, block: int, fmt: str | None) -> dict[str, Any]:
    from healthsynth.scale import sample

    runs = {}
    for k in (1, 2):
        target = out / f"workers-{k}"
        shutil.rmtree(target, ignore_errors=True)
        before = machine()
        run = sample(model, n, target, workers=k, seed=17, block_size=block, fmt=fmt)
        rec = run.record
        runs[str(k)] = {
            "seconds": rec["seconds"],
            "startup_seconds": rec.get("startup_seconds"),
            "blocks_seconds": rec.get("blocks_seconds"),
            "units_per_second": rec["rows_per_second"],
            "units_per_second_blocks_only": round(n / rec["blocks_seconds"], 1),
            "blocks": rec["blocks"],
            "block_seconds": rec["block_seconds"],
            "block_cpu_seconds": rec.get("block_cpu_seconds"),
            # cores the workers got on average while the blocks ran (CPU s / wall s)
            "cores_used": round(rec["block_cpu_seconds"]["sum"] / rec["blocks_seconds"], 2)
            if rec.get("block_cpu_seconds") and rec.get("blocks_seconds")
            else None,
            "workers_lost": rec["workers_lost"],
            "output_bytes": rec.get("output_bytes"),
            "machine_before": before,
            "machine_after": machine(),
        }
    if fmt is None:
        same = digests(out / "workers-1") == digests(out / "workers-2")
    else:
        same = all(
            hashlib.sha256((out / "workers-1" / p.name).read_bytes()).digest()
            == hashlib.sha256(p.read_bytes()).digest()
            for p in sorted((out / "workers-2").iterdir())
            if p.is_file() and not p.name.startswith(".") and p.name != "run.json"
        )
    one, two = runs["1"], runs["2"]
    return {
        "runs": runs,
        "byte_identical_1_vs_2_workers": same,
        "speedup_whole_run": round(two["units_per_second"] / one["units_per_second"], 3),
        "speedup_blocks_only": round(
            two["units_per_second_blocks_only"] / one["units_per_second_blocks_only"], 3
        ),
    }


def stage_sample(args: argparse.Namespace, work: Path) -> dict[str, Any]:
    model = work / "table-model"
    fit = fit_table_model(model, args.fit_seconds) if not model.exists() else {"reused": True}
    res = sample_runs(model, args.rows, work / "table", args.block, None)
    res["speedup_target"] = 1.6
    res["speedup_met"] = res["speedup_whole_run"] >= 1.6
    return {"model": fit, "rows": args.rows, "block_size": args.block, **res}


def stage_timelines(args: argparse.Namespace, work: Path) -> dict[str, Any]:
    from healthsynth.data import load_timelines
    from healthsynth.generators.timeline_lm import TimelineLM

    model = work / "timeline-model"
    info: dict[str, Any] = {"reused": True}
    if not model.exists():
        ds = load_timelines("nafld")
        t0 = time.perf_counter()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            gen = TimelineLM(seed=0, code_map="nafld", max_time=args.fit_seconds).fit(ds)
        gen.save(model)
        info = {
            "patients": int(len(ds.patient_table)),
            "fit_seconds": round(time.perf_counter() - t0, 1),
            "epochs_run": gen.training_record_.get("epochs_run"),
        }
    res = sample_runs(model, args.patients, work / "timelines", args.patient_block, "parquet")
    return {"model": info, "patients": args.patients, "block_size": args.patient_block, **res}


def resample(df, n: int, seed: int):
    import numpy as np

    rng = np.random.default_rng(seed)
    out = df.iloc[rng.integers(0, len(df), n)].reset_index(drop=True)
    for c in out.columns:
        s = out[c]
        if s.dtype.kind == "f" and s.nunique() > 20:
            noise = rng.normal(0, 0.02 * float(s.std()), n)
            out[c] = (s + noise).round(3).clip(lower=float(df[c].min()), upper=float(df[c].max()))
    return out


def stage_evaluate(args: argparse.Namespace, work: Path) -> dict[str, Any]:
    from healthsynth.data import train_holdout_split
    from healthsynth.scale.evaluate import evaluate_shards

    shards = work / "table" / "workers-2"
    if not shards.exists():
        raise SystemExit("run the sample stage first (its 2-worker shards are the synthetic set)")
    train, holdout = train_holdout_split(pbc(), holdout=0.2, seed=0)
    real = resample(train, args.real_rows, seed=1)
    hold = resample(holdout, args.real_rows // 5, seed=2)
    before = machine()
    t0 = time.perf_counter()
    result = evaluate_shards(
        real=real,
        synthetic=shards,
        holdout=hold,
        target="status",
        sensitive=["sex"],
        engine="ray",
        workers=2,
        seed=0,
    )
    took = time.perf_counter() - t0
    statuses: dict[str, int] = {}
    for r in result["records"]:
        statuses[r["status"]] = statuses.get(r["status"], 0) + 1
    return {
        "synthetic_rows": result["meta"]["scale"]["synthetic_rows"],
        "real_rows": len(real),
        "holdout_rows": len(hold),
        "seconds": round(took, 1),
        "target_seconds": 300,
        "target_met": took <= 300,
        "scale": result["meta"]["scale"],
        "record_statuses": statuses,
        "per_metric_seconds": {
            r["name"]: r["seconds"] for r in result["records"] if r.get("seconds") is not None
        },
        "headline": {
            r["name"]: r["value"]
            for r in result["records"]
            if r["subgroup"] is None and r["status"] == "ok"
        },
        "machine_before": before,
        "machine_after": machine(),
    }


def stage_train(args: argparse.Namespace, work: Path) -> dict[str, Any]:
    from healthsynth.data import infer_schema, load_timelines
    from healthsynth.generators.tabular_lm import TabularLM
    from healthsynth.generators.timeline_lm import TimelineLM
    from healthsynth.scale.train import compare

    out: dict[str, Any] = {"targets": {"relative_gap_max": 0.02}}
    df = pbc()
    before = machine()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        res = compare(
            TabularLM(seed=0, epochs=args.epochs, privacy_stop=False),
            df,
            workers=2,
            schema=infer_schema(df, target="status"),
        )
    out["tabular-lm"] = {
        **res,
        "data": "survival/pbc (418 rows, 19 columns)",
        "machine_before": before,
        "machine_after": machine(),
    }
    ds = load_timelines("nafld", max_patients=args.train_patients, seed=0)
    before = machine()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        res = compare(
            TimelineLM(seed=0, code_map="nafld", epochs=args.timeline_epochs), ds, workers=2
        )
    out["timeline-lm"] = {
        **res,
        "data": f"NAFLD cohort, {args.train_patients} patients",
        "machine_before": before,
        "machine_after": machine(),
    }
    for name in ("tabular-lm", "timeline-lm"):
        out[name]["target_met"] = abs(out[name]["relative_gap"]) <= 0.02
    return out


#: assumed price of one vCPU-hour (on-demand, compute-optimised x86, 2025 list prices are near
#: this; replace with yours) and output bytes written per second by one driver
PRICE_PER_VCPU_HOUR = 0.045


def stage_plan(args: argparse.Namespace, work: Path) -> dict[str, Any]:
    """The 100-million-patient plan from the measured per-block figures (no Ray work)."""
    res = {p.stem: json.loads(p.read_text()) for p in args.out.glob("*.json") if p.stem != "plan"}
    patients = args.plan_patients
    workers = args.plan_workers
    plan: dict[str, Any] = {
        "patients": patients,
        "workers": workers,
        "price_per_vcpu_hour_usd": PRICE_PER_VCPU_HOUR,
        "stages": {},
    }
    tab = res.get("sample")
    if tab:
        one = tab["runs"]["1"]
        per_block, unit = one["block_seconds"]["mean"], "wall seconds on the loaded machine"
        if (one.get("block_cpu_seconds") or {}).get("mean"):
            per_block, unit = one["block_cpu_seconds"]["mean"], "CPU seconds"
        block = tab["block_size"]
        cpu_h = patients / block * per_block / 3600
        plan["stages"]["sample_table"] = {
            "measured": f"{per_block:.1f} s per block of {block:,} rows on one worker "
            f"({block / per_block:.0f} rows/s per worker; {unit})",
            "assumption": "one 19-column row per patient (a patients table)",
            "cpu_hours": round(cpu_h, 1),
            "wall_hours": round(cpu_h / workers, 2),
            "cost_usd": round(cpu_h * PRICE_PER_VCPU_HOUR, 2),
            "output_gb": round((one.get("output_bytes") or 0) / tab["rows"] * patients / 1e9, 1),
        }
    tl = res.get("timelines")
    if tl:
        one = tl["runs"]["1"]
        per_block = one["block_seconds"]["mean"]
        if (one.get("block_cpu_seconds") or {}).get("mean"):
            per_block = one["block_cpu_seconds"]["mean"]
        block = tl["block_size"]
        cpu_h = patients / block * per_block / 3600
        out_bytes = (one.get("output_bytes") or 0) / tl["patients"] * patients
        plan["stages"]["sample"] = {
            "measured": f"{per_block:.1f} s per block of {block:,} patients on one worker "
            f"({block / per_block:.0f} patients/s per worker)",
            "cpu_hours": round(cpu_h, 1),
            "wall_hours": round(cpu_h / workers, 2),
            "cost_usd": round(cpu_h * PRICE_PER_VCPU_HOUR, 2),
            "output_gb": round(out_bytes / 1e9, 1),
        }
    ev = res.get("evaluate")
    if ev:
        rows = ev["synthetic_rows"]
        blocks_cpu = ev["scale"]["blocks_seconds"] * ev["scale"]["workers"]
        per_row = blocks_cpu / rows
        cpu_h = per_row * patients / 3600
        plan["stages"]["evaluate_all_rows"] = {
            "measured": f"{per_row * 1e3:.2f} CPU-ms per synthetic row for the all-row metrics "
            f"({rows:,} rows of a 19-column table, 2 workers)",
            "assumption": "one row per patient (the patients table); the event metrics of "
            "timelines run on a subsample",
            "cpu_hours": round(cpu_h, 1),
            "wall_hours": round(cpu_h / workers, 2),
            "cost_usd": round(cpu_h * PRICE_PER_VCPU_HOUR, 2),
        }
        sub = ev["scale"]["subsample_metrics_seconds"] / 3600
        plan["stages"]["evaluate_subsample"] = {
            "measured": f"{ev['scale']['subsample_metrics_seconds']:.0f} s for the other "
            f"metrics on {ev['scale']['subsample_rows']:,} rows (one task)",
            "cpu_hours": round(sub, 2),
            "wall_hours": round(sub, 2),
            "cost_usd": round(sub * PRICE_PER_VCPU_HOUR, 2),
        }
    tr = res.get("train")
    if tr and "timeline-lm" in tr:
        rec = tr["timeline-lm"]["local"]
        tokens_per_s = rec.get("tokens_per_second")
        n_train = rec.get("n_train_patients") or rec.get("n_patients") or 1
        per_patient = rec.get("tokens_seen", 0) / max(rec.get("epochs_run", 1), 1) / n_train
        plan["stages"]["fit"] = {
            "measured": f"{tokens_per_s} tokens/s in one process (timeline-lm); with 2 Ray "
            f"workers {tr['timeline-lm']['ray'].get('tokens_per_second')} tokens/s on each "
            "(each takes half of every batch)",
            "assumption": f"{args.plan_real:,} real patients, {per_patient:.0f} tokens each "
            f"(as measured), {args.plan_epochs} epochs",
        }
        if tokens_per_s:
            cpu_h = args.plan_real * per_patient * args.plan_epochs
            cpu_h = cpu_h / tokens_per_s / 3600
            plan["stages"]["fit"].update(
                cpu_hours=round(cpu_h, 1),
                cost_usd=round(cpu_h * PRICE_PER_VCPU_HOUR, 2),
            )
    return {"plan": plan}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("stage", choices=["sample", "timelines", "evaluate", "train", "plan"])
    ap.add_argument("--rows", type=int, default=1_000_000)
    ap.add_argument("--block", type=int, default=50_000)
    ap.add_argument("--patients", type=int, default=20_000)
    ap.add_argument("--patient-block", type=int, default=2_500)
    ap.add_argument("--real-rows", type=int, default=100_000)
    ap.add_argument("--fit-seconds", type=float, default=120.0)
    ap.add_argument("--epochs", type=int, default=30)
    ap.add_argument("--timeline-epochs", type=int, default=4)
    ap.add_argument("--train-patients", type=int, default=3000)
    ap.add_argument("--plan-patients", type=int, default=100_000_000)
    ap.add_argument("--plan-workers", type=int, default=256)
    ap.add_argument("--plan-real", type=int, default=1_000_000)
    ap.add_argument("--plan-epochs", type=int, default=10)
    ap.add_argument("--work", type=Path, default=Path(tempfile.gettempdir()) / "hs-scale-out")
    ap.add_argument("--out", type=Path, default=ROOT / "docs" / "benchmark-results" / "scale-out")
    args = ap.parse_args()
    args.work.mkdir(parents=True, exist_ok=True)
    args.out.mkdir(parents=True, exist_ok=True)
    if args.stage != "plan":
        import ray

        ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, configure_logging=False)
    started = time.strftime("%Y-%m-%dT%H:%M:%S%z")
    stage = {
        "sample": stage_sample,
        "timelines": stage_timelines,
        "evaluate": stage_evaluate,
        "train": stage_train,
        "plan": stage_plan,
    }[args.stage]
    before = machine()
    body = stage(args, args.work)
    result = {
        "benchmark": f"scale-out/{args.stage}",
        "command": "python benchmarks/scale_out.py " + " ".join(sys.argv[1:]),
        "started": started,
        "finished": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "environment": environment(),
        "machine_before": before,
        "machine_after": machine(),
        **body,
    }
    path = args.out / f"{args.stage}.json"
    path.write_text(json.dumps(result, indent=1, default=str) + "\n", encoding="utf-8")
    print(
        json.dumps(
            {k: v for k, v in result.items() if k not in ("environment",)}, indent=1, default=str
        )[:3000]
    )


if __name__ == "__main__":
    main()
