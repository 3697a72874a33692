#!/usr/bin/env python
"""Time SDMetrics' single-table QualityReport and DCROverfittingProtection on Parquet tables.

Benchmark-only, one measured cell of ``benchmarks/evaluate.py``; run with the peers venv's
interpreter (see ``setup.sh``)::

    .venv-peers/bin/python benchmarks/peers/run_sdmetrics.py --data FOLDER \
        --record record.json --seed 0 --dcr-rows 10000

FOLDER holds ``real.parquet``, ``synthetic.parquet``, ``holdout.parquet`` and
``sdmetrics_metadata.json`` (single-table metadata: every column ``numerical`` or
``categorical``), all written by ``benchmarks/evaluate.py``.

What runs, with the library's defaults except where noted:

- ``sdmetrics.reports.single_table.QualityReport().generate(real, synthetic, metadata)``
  (Column Shapes and Column Pair Trends). SDMetrics 0.32 marks this class deprecated in favour of
  ``sdmetrics.reports.QualityReport``, which computes the same two properties for one table; the
  deprecation warning is silenced.
- ``sdmetrics.single_table.DCROverfittingProtection.compute_breakdown(real, synthetic, holdout,
  metadata, ...)``: for each synthetic row, its distance to the closest training row and to the
  closest holdout row, the share closer to training and the score. Its distance loop compares
  every pair of rows (pandas cross joins of 1,000 × 1,000 chunks), so when the synthetic table
  has more than ``--dcr-rows`` rows it runs on the library's own ``num_rows_subsample`` of that
  many rows from each of the three tables (capped at the holdout's size), one iteration. The
  sample is drawn by ``DataFrame.sample`` from numpy's global generator, seeded with ``--seed``.
  The record says what was used and extrapolates the full computation's time from the measured
  seconds per row pair.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import sys
import time
import warnings
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

TABLE = "table"


def _pkg_version(name: str) -> str | None:
    try:
        return version(name)
    except PackageNotFoundError:
        return None


def _peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0  # Linux: kilobytes


def _log(msg: str) -> None:
    print(f"[run_sdmetrics {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def _plain(obj: Any) -> Any:
    if isinstance(obj, dict):
        return {str(k): _plain(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_plain(v) for v in obj]
    if isinstance(obj, np.generic):
        return obj.item()
    return obj


class Stage:
    """Wall and CPU seconds of a block, and the peak RSS after it, written into ``rec``."""

    def __init__(self, rec: dict[str, Any], name: str) -> None:
        self.rec, self.name = rec, name

    def __enter__(self) -> Stage:
        self.t0, self.c0 = time.perf_counter(), time.process_time()
        return self

    def __exit__(self, *exc: object) -> None:
        self.rec.setdefault(self.name, {}).update(
            wall_seconds=round(time.perf_counter() - self.t0, 3),
            cpu_seconds=round(time.process_time() - self.c0, 3),
            peak_rss_mb_after=round(_peak_rss_mb(), 1),
        )


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--data", required=True, type=Path, help="folder of the Parquet tables")
    p.add_argument("--record", required=True, type=Path, help="JSON record to write")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument(
        "--dcr-rows",
        type=int,
        default=10_000,
        help="subsample size for the DCR above this many synthetic rows; 0: never subsample",
    )
    p.add_argument("--skip-dcr", action="store_true")
    args = p.parse_args(argv)
    warnings.simplefilter("ignore")

    rec: dict[str, Any] = {
        "tool": "sdmetrics",
        "status": "running",
        "versions": {
            n: _pkg_version(n)
            for n in ("sdmetrics", "sdv", "pandas", "numpy", "scipy", "scikit-learn", "pyarrow")
        },
        "python": platform.python_version(),
        "cpu_count": os.cpu_count(),
        "seed": args.seed,
        "deviations_from_defaults": [],
    }
    try:
        with Stage(rec, "import"):
            from sdmetrics.reports.single_table import QualityReport
            from sdmetrics.single_table import DCROverfittingProtection
        with Stage(rec, "read"):
            real = pd.read_parquet(args.data / "real.parquet")
            synthetic = pd.read_parquet(args.data / "synthetic.parquet")
            holdout = pd.read_parquet(args.data / "holdout.parquet")
            metadata = json.loads((args.data / "sdmetrics_metadata.json").read_text())
        rec["rows"] = {"real": len(real), "synthetic": len(synthetic), "holdout": len(holdout)}
        rec["metadata"] = metadata
        _log(f"QualityReport on {len(real):,} real and {len(synthetic):,} synthetic rows")

        with Stage(rec, "quality_report"):
            report = QualityReport()
            report.generate(real, synthetic, metadata, verbose=False)
        q = rec["quality_report"]
        q["class"] = "sdmetrics.reports.single_table.QualityReport"
        q["score"] = round(float(report.get_score()), 4)
        props = report.get_properties()
        pairs = zip(props["Property"], props["Score"], strict=True)
        q["properties"] = {str(k): round(float(v), 4) for k, v in pairs}

        if args.skip_dcr:
            rec["dcr"] = {"status": "skipped"}
        else:
            n = len(synthetic)
            sub: int | None = None
            if args.dcr_rows and n > args.dcr_rows:
                sub = min(args.dcr_rows, len(holdout))
                rec["deviations_from_defaults"].append(
                    f"DCROverfittingProtection num_rows_subsample={sub} (default None: all rows), "
                    "num_iterations=1: every pair of rows at full size would take hours"
                )
            n_syn = sub or n
            n_train, n_hold = (sub, sub) if sub else (len(real), len(holdout))
            if n_hold < 0.5 * n_train:
                rec["notes"] = [
                    f"SDMetrics warns that its DCR wants a holdout at least half the training "
                    f"rows; here {n_hold:,} vs {n_train:,}, which pushes 'closer_to_training' up"
                ]
            pairs = n_syn * (n_train + n_hold)
            full_pairs = n * (len(real) + len(holdout))
            _log(f"DCROverfittingProtection: {n_syn:,} synthetic rows, {pairs:,} row pairs")
            np.random.seed(args.seed)  # DataFrame.sample(n) draws from the global generator
            with Stage(rec, "dcr"):
                out = DCROverfittingProtection.compute_breakdown(
                    real_training_data=real,
                    synthetic_data=synthetic,
                    real_validation_data=holdout,
                    metadata=metadata,
                    table_name=TABLE,
                    num_rows_subsample=sub,
                )
            d = rec["dcr"]
            secs = d["wall_seconds"]
            d.update(
                metric="sdmetrics.single_table.DCROverfittingProtection.compute_breakdown",
                result=_plain(out),
                subsampled=sub is not None,
                num_rows_subsample=sub,
                num_iterations=1,
                rows_used={"synthetic": n_syn, "training": n_train, "holdout": n_hold},
                row_pairs=pairs,
                row_pairs_full=full_pairs,
                seconds_per_million_pairs=round(secs / pairs * 1e6, 4) if pairs else None,
                extrapolated_full_seconds=round(secs * full_pairs / pairs, 1) if pairs else None,
            )
        rec["work_wall_seconds"] = round(
            rec["quality_report"]["wall_seconds"] + rec.get("dcr", {}).get("wall_seconds", 0.0), 3
        )
        rec["work_cpu_seconds"] = round(
            rec["quality_report"]["cpu_seconds"] + rec.get("dcr", {}).get("cpu_seconds", 0.0), 3
        )
        rec["status"] = "ok"
    except BaseException as e:
        rec["status"] = "failed"
        rec["error"] = f"{type(e).__name__}: {e}"
        raise
    finally:
        rec["peak_rss_mb"] = round(_peak_rss_mb(), 1)
        ru = resource.getrusage(resource.RUSAGE_SELF)
        rec["cpu_seconds_total"] = round(ru.ru_utime + ru.ru_stime, 3)
        args.record.parent.mkdir(parents=True, exist_ok=True)
        args.record.write_text(json.dumps(rec, indent=1, default=str) + "\n")
    _log(f"done: {rec['work_wall_seconds']} s of work; record -> {args.record}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
