#!/usr/bin/env python
"""Benchmark: time and memory of a full ``healthsynth.evaluate`` against SDMetrics.

Issue target: a full evaluation of 100k real × 20 columns against 100k synthetic in ≤ 2 minutes
and ≤ 4 GB on 2 cores, and ≥ 3× faster than SDMetrics' QualityReport plus a DCR computation on the
same data, in the same run.

This is a speed and memory test, not a quality test. The tables are built from a real health
table (``causaldata/nhefs``: 1,629 rows, reduced to 20 columns: numbers, categories, a binary
target ``death``, sensitive ``sex`` and ``race``, six columns with missing values) and resampled
with replacement to N rows, with small seeded noise on the numeric columns (rounded to each
column's precision) so rows are not all duplicates:

- real (training) table: N rows, noise sd = 2 % of the column's sd, clipped to the source range;
- holdout: N // 5 rows, a separate draw made the same way;
- "synthetic" table: N rows, another draw with more noise (10 %, not clipped, so the range rules
  find a few violations) and 5 % of categorical cells redrawn from the column's marginal.

So every metric has something non-trivial to compute, but its values say nothing about any
generator. The tables are written once as Parquet into a temporary folder and each measured cell
reads the same files in its own subprocess, one after the other (never concurrently):

A. healthsynth: ``healthsynth.evaluate`` with every default metric, target, sensitive columns and a
   small rule set, then ``healthsynth.report.write_report`` when that module is importable.
B. SDMetrics (peers venv, ``benchmarks/peers/run_sdmetrics.py``): the single-table QualityReport
   plus ``DCROverfittingProtection`` (training vs holdout, like our ``dcr`` metric).

For each cell: wall and CPU seconds inside the cell for every stage, peak RSS inside the cell
(``RUSAGE_SELF``) and of the whole child process as the parent sees it (``os.wait4``), the
machine's load average before and after, and for A the seconds of every metric.

    .venv/bin/python benchmarks/evaluate.py                      # 100k rows, the issue's size
    .venv/bin/python benchmarks/evaluate.py --rows 5000 --out benchmarks/out/evaluate_5k.json
    .venv/bin/python benchmarks/evaluate.py --rows 2400 --columns 12 --skip-sdmetrics \
        --metrics detection_auc,tstr,importance_agreement --out benchmarks/out/gbm_2400.json

Run it on a quiet machine: with other processes on the cores, OpenMP's spin-waiting makes
scikit-learn's gradient boosting (TSTR, augmentation ...) several times slower (at 5,000 rows on
a loaded 2-core machine: evaluate 405 s with the default threads, 72 s with ``--omp-threads 1``).
Detection and importance agreement limit themselves to one thread (docs/evaluation.md, "Speed").

Peers run in ``.venv-peers`` (``bash benchmarks/peers/setup.sh``). SDMetrics' DCR compares every
pair of rows (pandas cross joins of 1,000 × 1,000 chunks), about 1.2·10¹⁰ pairs at 100k rows, so
above ``--sdmetrics-dcr-rows`` rows it runs on its own ``num_rows_subsample`` (recorded, with an
extrapolation of the full computation's time from the measured seconds per pair).
Results: ``--out`` (JSON, default docs/benchmark-results/evaluate.json).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import shutil
import subprocess
import sys
import tempfile
import time
import warnings
from datetime import datetime, timezone
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
HERE = Path(__file__).resolve().parent
PY = sys.executable
PEERS_PY = str(ROOT / os.environ.get("PEERS_VENV", ".venv-peers") / "bin" / "python")

SOURCE = "causaldata/nhefs"
TARGET = "death"
SENSITIVE = ["sex", "race"]
#: the 20 columns, in the order ``--columns k`` keeps them (roles first)
COLUMNS = [
    "death",
    "sex",
    "race",
    "qsmk",
    "age",
    "sbp",  # missing values
    "dbp",  # missing values
    "ht",
    "wt71",
    "wt82",  # missing values
    "smokeintensity",
    "smokeyrs",
    "cholesterol",  # missing values
    "income",  # missing values
    "price71",  # missing values
    "education",
    "marital",
    "exercise",
    "active",
    "alcoholfreq",
]
#: coded columns turned into text labels ("education_3"), so every tool sees them as categories
CATEGORICAL = ["education", "marital", "exercise", "active", "alcoholfreq"]
NOISE_REAL = 0.02  # noise sd as a share of the column's sd
NOISE_SYNTHETIC = 0.10
SYNTHETIC_CATEGORY_REDRAW = 0.05
MAX_DECIMALS = 4
THREAD_VARS = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")
#: the issue's target, for --rows 100000 --columns 20
TARGETS = {"rows": 100_000, "columns": 20, "wall_s": 120.0, "peak_rss_mb": 4096.0, "speedup": 3.0}


def _versions(names: tuple[str, ...]) -> dict[str, str | None]:
    out: dict[str, str | None] = {}
    for n in names:
        try:
            out[n] = version(n)
        except PackageNotFoundError:
            out[n] = None
    return out


def _environment() -> dict[str, Any]:
    return {
        "python": platform.python_version(),
        "platform": platform.platform(),
        "cpu_count": os.cpu_count(),
        "cpus_usable": len(os.sched_getaffinity(0)),
        "thread_env": {k: os.environ.get(k) for k in THREAD_VARS},
        "versions": _versions(
            ("healthsynth", "numpy", "pandas", "scipy", "scikit-learn", "pyarrow", "anonymeter")
        ),
    }


def _peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0  # Linux: kilobytes


def _log(msg: str) -> None:
    print(f"[evaluate {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


# --------------------------------------------------------------------------
# data
# --------------------------------------------------------------------------


def _decimals(values: np.ndarray) -> int:
    """The fewest decimals (up to MAX_DECIMALS) that write every value exactly."""
    v = values[np.isfinite(values)]
    for d in range(MAX_DECIMALS + 1):
        if np.allclose(np.round(v, d), v, rtol=0, atol=1e-9):
            return d
    return MAX_DECIMALS


def _draw(
    src: pd.DataFrame,
    n: int,
    *,
    rng: np.random.Generator,
    noise: float,
    clip: bool,
    redraw: float,
    numeric: dict[str, int],
) -> pd.DataFrame:
    """``n`` rows of ``src`` drawn with replacement, numeric columns jittered."""
    df = src.iloc[rng.integers(0, len(src), n)].reset_index(drop=True)
    for col, dec in numeric.items():
        x = df[col].to_numpy(float)
        sd = float(np.nanstd(src[col].to_numpy(float)))
        x = np.round(x + rng.normal(0.0, noise * sd, n), dec)
        if clip:
            x = np.clip(x, src[col].min(), src[col].max())
        if dec == 0 and not np.isnan(x).any():
            df[col] = x.astype(np.int64)
        else:
            df[col] = x
    if redraw > 0:
        for col in df.columns:
            if col in numeric:
                continue
            keep = rng.random(n) >= redraw
            other = src[col].iloc[rng.integers(0, len(src), n)].reset_index(drop=True)
            df[col] = df[col].where(keep, other)
    return df


def build_tables(rows: int, columns: int, seed: int, folder: Path) -> dict[str, Any]:
    """Write real, holdout and synthetic Parquet tables and SDMetrics metadata into ``folder``."""
    from healthsynth.data import infer_schema, load_dataset

    if not 1 <= columns <= len(COLUMNS):
        raise SystemExit(f"--columns must be between 1 and {len(COLUMNS)}; got {columns}")
    cols = COLUMNS[:columns]
    src = load_dataset(SOURCE)[cols].copy()
    for c in CATEGORICAL:
        if c in src:
            src[c] = [f"{c}_{int(v)}" if pd.notna(v) else None for v in src[c]]
    binary = [c for c in cols if c not in CATEGORICAL and src[c].dropna().nunique() <= 2]
    numeric = {c: _decimals(src[c].to_numpy(float)) for c in cols if c not in CATEGORICAL + binary}
    ss = np.random.SeedSequence(seed)
    r_real, r_hold, r_syn = (np.random.default_rng(s) for s in ss.spawn(3))
    common = {"numeric": numeric}
    tables = {
        "real": _draw(src, rows, rng=r_real, noise=NOISE_REAL, clip=True, redraw=0, **common),
        "holdout": _draw(
            src, rows // 5, rng=r_hold, noise=NOISE_REAL, clip=True, redraw=0, **common
        ),
        "synthetic": _draw(
            src,
            rows,
            rng=r_syn,
            noise=NOISE_SYNTHETIC,
            clip=False,
            redraw=SYNTHETIC_CATEGORY_REDRAW,
            **common,
        ),
    }
    paths = {}
    for name, df in tables.items():
        paths[name] = folder / f"{name}.parquet"
        df.to_parquet(paths[name], index=False)
    real = tables["real"]
    target = TARGET if TARGET in cols else None
    sensitive = [c for c in SENSITIVE if c in cols]
    schema = infer_schema(real, target=target, sensitive=sensitive)
    sdtypes = {"numeric": "numerical", "integer": "numerical", "datetime": "datetime"}
    metadata = {
        "columns": {c.name: {"sdtype": sdtypes.get(c.kind, "categorical")} for c in schema.columns}
    }
    (folder / "sdmetrics_metadata.json").write_text(json.dumps(metadata, indent=1))
    return {
        "source": SOURCE,
        "source_rows": int(len(src)),
        "columns": cols,
        "rows": {k: int(len(v)) for k, v in tables.items()},
        "kinds": {c.name: c.kind for c in schema.columns},
        "sdmetrics_sdtypes": {k: v["sdtype"] for k, v in metadata["columns"].items()},
        "missing_share_real": {
            c: round(float(real[c].isna().mean()), 4) for c in cols if real[c].isna().any()
        },
        "numeric_decimals": numeric,
        "target": target,
        "sensitive": sensitive,
        "noise": {
            "real_and_holdout_sd_share": NOISE_REAL,
            "synthetic_sd_share": NOISE_SYNTHETIC,
            "synthetic_categorical_redraw": SYNTHETIC_CATEGORY_REDRAW,
            "clipped_to_source_range": ["real", "holdout"],
        },
        "distinct_rows_real": int(len(real.drop_duplicates())),
        "parquet_mb": {k: round(p.stat().st_size / 2**20, 2) for k, p in paths.items()},
        "files": {k: str(p) for k, p in paths.items()},
    }


def make_rules(columns: list[str]):
    """A small rule set: plausible ranges for age and blood pressure."""
    from healthsynth.knowledge import Predicate, Rule, RuleSet

    rules = [
        Rule(name="range:age", when=(), then=Predicate("age", minimum=25, maximum=74)),
        Rule(name="range:sbp", when=(), then=Predicate("sbp", minimum=80, maximum=250)),
        Rule(name="range:dbp", when=(), then=Predicate("dbp", minimum=40, maximum=140)),
    ]
    return RuleSet([r for r in rules if r.then.column in columns])


# --------------------------------------------------------------------------
# cell A: healthsynth (runs in its own process: `evaluate.py --cell healthsynth ...`)
# --------------------------------------------------------------------------


def _instrument_metrics() -> list[dict[str, Any]] | None:
    """Wrap the runner's per-metric call to learn which records each metric produced.

    The wrapper only reads a clock around the call; it changes nothing that is measured.
    """
    try:
        from healthsynth.evaluate import _runner
    except ImportError:
        return None
    inner = getattr(_runner, "run_metric", None)
    if inner is None:
        return None
    calls: list[dict[str, Any]] = []

    def timed(name: str, **context: Any) -> Any:
        t0, c0 = time.perf_counter(), time.process_time()
        records = inner(name, **context)
        calls.append(
            {
                "metric": name,
                "wall_seconds": round(time.perf_counter() - t0, 3),
                "cpu_seconds": round(time.process_time() - c0, 3),
                "records": len(records),
            }
        )
        return records

    _runner.run_metric = timed
    return calls


def _per_metric(records: list[dict], calls: list[dict] | None) -> dict[str, Any]:
    """Seconds by metric (from the records: the max over a metric's records), and failures."""
    out: dict[str, Any] = {}
    if calls is not None and sum(c["records"] for c in calls) == len(records):
        i = 0
        for c in calls:
            recs = records[i : i + c["records"]]
            i += c["records"]
            secs = [r["seconds"] for r in recs if r.get("seconds") is not None]
            statuses: dict[str, int] = {}
            for r in recs:
                statuses[r["status"]] = statuses.get(r["status"], 0) + 1
            out[c["metric"]] = {
                "seconds": max(secs) if secs else None,
                "wall_seconds_measured": c["wall_seconds"],
                "cpu_seconds": c["cpu_seconds"],
                "records": c["records"],
                "statuses": statuses,
                "record_names": sorted({r["name"] for r in recs}),
                "problems": [
                    {"record": r["name"], "status": r["status"], "message": r.get("message")}
                    for r in recs
                    if r["status"] != "ok"
                ],
            }
        return {"method": "runner calls", "metrics": out}
    # fallback: records of one metric are contiguous and share one ``seconds``
    groups: list[list[dict]] = []
    for r in records:
        key = (r["dimension"], r.get("seconds"))
        if groups and (groups[-1][0]["dimension"], groups[-1][0].get("seconds")) == key:
            groups[-1].append(r)
        else:
            groups.append([r])
    for g in groups:
        label = g[0]["name"] if len(g) == 1 else f"{g[0]['name']} (+{len(g) - 1} records)"
        out[label] = {
            "seconds": g[0].get("seconds"),
            "records": len(g),
            "problems": [
                {"record": r["name"], "status": r["status"], "message": r.get("message")}
                for r in g
                if r["status"] != "ok"
            ],
        }
    return {"method": "contiguous records with equal seconds", "metrics": out}


def cell_healthsynth(args: argparse.Namespace) -> None:
    # this file is named evaluate.py: keep its folder off the import path
    sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != HERE]
    warnings.simplefilter("ignore")
    rec: dict[str, Any] = {"tool": "healthsynth", "status": "running", "stages": {}}

    def stage(name: str, t0: float, c0: float) -> None:
        rec["stages"][name] = {
            "wall_seconds": round(time.perf_counter() - t0, 3),
            "cpu_seconds": round(time.process_time() - c0, 3),
            "peak_rss_mb_after": round(_peak_rss_mb(), 1),
        }

    try:
        t0, c0 = time.perf_counter(), time.process_time()
        import healthsynth

        stage("import", t0, c0)
        t0, c0 = time.perf_counter(), time.process_time()
        folder = Path(args.data)
        real = pd.read_parquet(folder / "real.parquet")
        holdout = pd.read_parquet(folder / "holdout.parquet")
        synthetic = pd.read_parquet(folder / "synthetic.parquet")
        info = json.loads((folder / "data.json").read_text())
        rules = make_rules(list(real.columns))
        stage("read", t0, c0)
        calls = _instrument_metrics()
        t0, c0 = time.perf_counter(), time.process_time()
        result = healthsynth.evaluate(
            real=real,
            synthetic=synthetic,
            holdout=holdout,
            target=info["target"],
            sensitive=info["sensitive"],
            rules=rules,
            metrics=args.metrics.split(",") if args.metrics else None,
            seed=args.seed,
        )
        stage("evaluate", t0, c0)
        records = result["records"]
        rec["evaluate_seconds_reported"] = result.get("seconds")
        rec["rules"] = [r.description for r in rules]
        rec["n_records"] = len(records)
        rec["record_statuses"] = {
            s: sum(r["status"] == s for r in records) for s in {r["status"] for r in records}
        }
        rec["per_metric"] = _per_metric(records, calls)
        rec["input_warnings"] = result.get("meta", {}).get("warnings")
        try:
            from healthsynth.report import write_report
        except ImportError as e:
            rec["report"] = {"status": "skipped", "note": f"healthsynth.report not importable: {e}"}
        else:
            t0, c0 = time.perf_counter(), time.process_time()
            try:
                path = write_report(result, folder / "report")
            except Exception as e:  # the benchmark still reports the evaluation
                rec["report"] = {"status": "failed", "error": f"{type(e).__name__}: {e}"}
            else:
                stage("report", t0, c0)
                rec["report"] = {
                    "status": "ok",
                    "files_kb": {
                        p.name: round(p.stat().st_size / 1024, 1) for p in path.parent.iterdir()
                    },
                }
        rec["versions"] = result.get("meta", {}).get("versions")
        rec["status"] = "ok"
    except BaseException as e:
        rec["status"] = "failed"
        rec["error"] = f"{type(e).__name__}: {e}"
        raise
    finally:
        rec["peak_rss_mb"] = round(_peak_rss_mb(), 1)
        ru = resource.getrusage(resource.RUSAGE_SELF)
        rec["cpu_seconds_total"] = round(ru.ru_utime + ru.ru_stime, 3)
        Path(args.record).write_text(json.dumps(rec, indent=1, default=str))


# --------------------------------------------------------------------------
# parent
# --------------------------------------------------------------------------


def run_cell(
    cmd: list[str], log: Path, timeout: float, env: dict[str, str] | None = None
) -> dict[str, Any]:
    """Run one cell; return its exit code, wall seconds and the child's own resource usage."""
    load_before = os.getloadavg()
    t0 = time.perf_counter()
    with open(log, "w") as fh:
        proc = subprocess.Popen(
            cmd, stdout=fh, stderr=subprocess.STDOUT, cwd=ROOT, env={**os.environ, **(env or {})}
        )
        deadline = t0 + timeout
        timed_out = False
        while True:
            pid, status, ru = os.wait4(proc.pid, os.WNOHANG)
            if pid:
                break
            if time.perf_counter() > deadline:
                proc.kill()
                pid, status, ru = os.wait4(proc.pid, 0)
                fh.write(f"\nTIMEOUT after {timeout} s\n")
                timed_out = True
                break
            time.sleep(0.05)
    # reaped here by wait4, so Popen must not wait for it again
    proc.returncode = os.waitstatus_to_exitcode(status)
    return {
        "exit_code": proc.returncode,
        "timed_out": timed_out,
        "process_wall_seconds": round(time.perf_counter() - t0, 2),
        "process_cpu_seconds": round(ru.ru_utime + ru.ru_stime, 2),
        "process_peak_rss_mb": round(ru.ru_maxrss / 1024, 1),
        "load_average_before": [round(x, 2) for x in load_before],
        "load_average_after": [round(x, 2) for x in os.getloadavg()],
        "log": str(log),
    }


def _cell(
    cmd: list[str], record: Path, log: Path, timeout: float, env: dict[str, str]
) -> dict[str, Any]:
    proc = run_cell(cmd, log, timeout, env)
    rec = json.loads(record.read_text()) if record.exists() else {"status": "failed"}
    if proc["exit_code"] != 0:
        rec["status"] = "failed"
        rec["log_tail"] = log.read_text()[-3000:]
    rec["process"] = proc
    return rec


def _ratio(a: float | None, b: float | None) -> float | None:
    return round(b / a, 2) if a and b else None


def compare(hs: dict[str, Any], sdm: dict[str, Any] | None, rows: int, cols: int) -> dict:
    st = hs.get("stages", {})
    ev = st.get("evaluate", {}).get("wall_seconds")
    rep = st.get("report", {}).get("wall_seconds")
    ev_rep = ev + rep if ev is not None and rep is not None else None
    out: dict[str, Any] = {
        "healthsynth_evaluate_wall_s": ev,
        "healthsynth_evaluate_plus_report_wall_s": ev_rep,
        "healthsynth_peak_rss_mb": hs.get("process", {}).get("process_peak_rss_mb"),
    }
    if sdm is not None and sdm.get("status") == "ok":
        work = sdm.get("work_wall_seconds")
        out.update(
            sdmetrics_work_wall_s=work,
            sdmetrics_dcr_subsampled=sdm.get("dcr", {}).get("subsampled"),
            speedup=_ratio(ev, work),
            speedup_vs_evaluate_plus_report=_ratio(ev_rep, work),
            speedup_process_wall=_ratio(
                hs.get("process", {}).get("process_wall_seconds"),
                sdm.get("process", {}).get("process_wall_seconds"),
            ),
        )
        full = sdm.get("dcr", {}).get("extrapolated_full_seconds")
        if full is not None and sdm.get("dcr", {}).get("subsampled"):
            q = sdm.get("quality_report", {}).get("wall_seconds") or 0.0
            out["speedup_if_sdmetrics_dcr_ran_on_all_rows_extrapolated"] = _ratio(ev, q + full)
        out["definition"] = (
            "speedup = SDMetrics (QualityReport + DCROverfittingProtection) wall seconds inside "
            "its cell / healthsynth.evaluate wall seconds inside its cell (imports and reading "
            "the Parquet files excluded on both sides; process_wall includes them)"
        )
    applies = rows == TARGETS["rows"] and cols == TARGETS["columns"]
    out["target"] = {
        "applies": applies,
        "wall_s_max": TARGETS["wall_s"],
        "peak_rss_mb_max": TARGETS["peak_rss_mb"],
        "speedup_min": TARGETS["speedup"],
    }
    if applies:
        rss = out["healthsynth_peak_rss_mb"]
        out["target"].update(
            wall_met=ev is not None and ev <= TARGETS["wall_s"],
            memory_met=rss is not None and rss <= TARGETS["peak_rss_mb"],
            speedup_met=(out.get("speedup") or 0) >= TARGETS["speedup"],
        )
    return out


def summary(res: dict[str, Any]) -> str:
    hs = res["healthsynth"]
    lines = [
        f"{res['rows']:,} real × {res['columns']} columns vs {res['rows']:,} synthetic "
        f"(holdout {res['data']['rows']['holdout']:,})",
        f"healthsynth: {hs.get('status')}",
    ]
    for k, v in hs.get("stages", {}).items():
        lines.append(f"  {k:<9} {v['wall_seconds']:>8.2f} s wall {v['cpu_seconds']:>8.2f} s cpu")
    lines.append(f"  peak RSS {hs.get('process', {}).get('process_peak_rss_mb')} MB")
    metrics = hs.get("per_metric", {}).get("metrics", {})
    for k, v in sorted(metrics.items(), key=lambda kv: -(kv[1].get("seconds") or 0)):
        bad = f"  [{len(v['problems'])} not ok]" if v.get("problems") else ""
        lines.append(f"    {k:<24} {v.get('seconds') or 0:>8.3f} s{bad}")
    sdm = res.get("sdmetrics")
    if sdm:
        lines.append(f"sdmetrics: {sdm.get('status')}")
        for k in ("quality_report", "dcr"):
            if k in sdm:
                lines.append(f"  {k:<15} {sdm[k].get('wall_seconds')} s wall")
        lines.append(f"  peak RSS {sdm.get('process', {}).get('process_peak_rss_mb')} MB")
    lines.append(json.dumps(res["comparison"], indent=1))
    return "\n".join(lines)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--rows", type=int, default=100_000, help="real and synthetic rows")
    p.add_argument("--columns", type=int, default=20, help=f"at most {len(COLUMNS)}")
    p.add_argument(
        "--out", type=Path, default=ROOT / "docs" / "benchmark-results" / "evaluate.json"
    )
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--skip-sdmetrics", action="store_true")
    p.add_argument(
        "--sdmetrics-dcr-rows",
        type=int,
        default=10_000,
        help="above this many synthetic rows SDMetrics' DCR runs on its own num_rows_subsample "
        "of this many rows (capped at the holdout's size); 0: never subsample",
    )
    p.add_argument(
        "--omp-threads",
        type=int,
        default=None,
        help="set OMP_NUM_THREADS (and the BLAS thread variables) in both cells; default: "
        "leave the libraries' defaults (all cores). Diagnostic: OpenMP spin-waiting makes "
        "scikit-learn's gradient boosting many times slower when other processes load the cores",
    )
    p.add_argument(
        "--metrics",
        default=None,
        help="comma-separated metric names for the healthsynth cell (default: all); e.g. "
        "detection_auc,tstr,importance_agreement to time the gradient-boosting metrics alone",
    )
    p.add_argument("--timeout", type=float, default=3600.0, help="per cell, seconds")
    p.add_argument("--work-dir", type=Path, default=None, help="default: a temporary folder")
    p.add_argument("--keep", action="store_true", help="keep the data, logs and report")
    p.add_argument("--cell", choices=["healthsynth"], help=argparse.SUPPRESS)
    p.add_argument("--data", help=argparse.SUPPRESS)
    p.add_argument("--record", help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.cell == "healthsynth":
        cell_healthsynth(args)
        return
    if args.rows < 10:
        p.error("--rows must be at least 10")

    folder = Path(tempfile.mkdtemp(prefix="hs-evaluate-", dir=args.work_dir))
    try:
        _log(f"building tables: {args.rows:,} rows × {args.columns} columns in {folder}")
        data = build_tables(args.rows, args.columns, args.seed, folder)
        (folder / "data.json").write_text(json.dumps(data, indent=1))
        env = {}
        if args.omp_threads:
            env = {k: str(args.omp_threads) for k in THREAD_VARS}
        res: dict[str, Any] = {
            "benchmark": "evaluate",
            "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
            "command": " ".join([Path(PY).name, *sys.argv]),
            "rows": args.rows,
            "columns": args.columns,
            "seed": args.seed,
            "metrics": args.metrics.split(",") if args.metrics else "all",
            "note": "speed and memory test on resampled real rows; not a quality test",
            "data": {k: v for k, v in data.items() if k != "files"},
            "environment": {**_environment(), "cell_thread_env": env or None},
        }

        _log("cell A: healthsynth.evaluate")
        cmd = [PY, str(Path(__file__).resolve()), "--cell", "healthsynth", "--data", str(folder)]
        cmd += ["--record", str(folder / "healthsynth.record.json"), "--seed", str(args.seed)]
        if args.metrics:
            cmd += ["--metrics", args.metrics]
        res["healthsynth"] = _cell(
            cmd, folder / "healthsynth.record.json", folder / "healthsynth.log", args.timeout, env
        )
        sdm = None
        if not args.skip_sdmetrics:
            _log("cell B: SDMetrics QualityReport + DCROverfittingProtection")
            cmd = [PEERS_PY, str(HERE / "peers" / "run_sdmetrics.py")]
            cmd += ["--data", str(folder), "--record", str(folder / "sdmetrics.record.json")]
            cmd += ["--seed", str(args.seed), "--dcr-rows", str(args.sdmetrics_dcr_rows)]
            sdm = _cell(
                cmd, folder / "sdmetrics.record.json", folder / "sdmetrics.log", args.timeout, env
            )
            res["sdmetrics"] = sdm
        res["comparison"] = compare(res["healthsynth"], sdm, args.rows, args.columns)
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(res, indent=1, default=str) + "\n")
        print(summary(res))
        _log(f"results -> {args.out}")
    finally:
        if args.keep:
            _log(f"kept {folder}")
        else:
            shutil.rmtree(folder, ignore_errors=True)


if __name__ == "__main__":
    main()
