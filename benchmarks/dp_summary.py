#!/usr/bin/env python
"""Summarise the ε–utility curve (the ``dp`` benchmark) and the canary audit in one table.

Reads ``results.csv`` of a finished (or partly finished) run of the packaged configuration
``dp`` and, when given, the ``audit.json`` of ``benchmarks/dp_audit.py``; writes
``summary.json`` and ``summary.md`` into ``--out``:

    healthsynth benchmark dp -o bench-dp            # the curve (resumable)
    .venv/bin/python benchmarks/dp_audit.py --out audit-dp
    .venv/bin/python benchmarks/dp_summary.py --results bench-dp/results.csv \\
        --audit audit-dp/audit.json --out docs/benchmark-results/dp

Per dataset and ε: the seeds that finished; the mean and standard deviation over seeds of
train-on-synthetic AUC (TSTR), its difference from the non-private model of the same seed,
detection AUC, the DCR median ratio, both membership-inference AUCs, the fit's wall time, and
the ratio of its CPU time to the non-private fit's of the same seed (CPU time, because wall
time on a shared machine measures the load of others as much as the fit).
"""

from __future__ import annotations

import argparse
import csv
import json
import math
import statistics
from collections import defaultdict
from pathlib import Path

#: (record name, subgroup) -> column of the summary
FIGURES = {
    ("tstr_auc", ""): "tstr_auc",
    ("detection_auc", ""): "detection_auc",
    ("dcr_median_ratio", ""): "dcr_ratio",
    ("exact_copy_rate", ""): "exact_copy_rate",
    ("membership_inference_auc", "distance"): "mia_auc_distance",
    ("membership_inference_auc", "density"): "mia_auc_density",
    ("fit_seconds", ""): "fit_seconds",
    ("fit_cpu_seconds", ""): "fit_cpu_seconds",
}
ORDER = {"eps-inf": 0, "eps-8": 1, "eps-3": 2, "eps-1": 3}


def read_cells(path: Path) -> dict[tuple[str, str, int], dict[str, float]]:
    """(dataset, method, seed) -> {figure: value} for the cells that finished."""
    cells: dict[tuple[str, str, int], dict[str, float]] = defaultdict(dict)
    status: dict[tuple[str, str, int], str] = {}
    with path.open(newline="", encoding="utf-8") as f:
        for row in csv.DictReader(f):
            key = (row["dataset"], row["generator"], int(row["seed"]))
            if row["metric"] == "cell_status":
                status[key] = row["status"]
            col = FIGURES.get((row["metric"], row["subgroup"]))
            if col and row["status"] == "ok" and row["value"] not in ("", None):
                cells[key][col] = float(row["value"])
    return {k: v for k, v in cells.items() if status.get(k) == "ok"}


def mean_sd(values: list[float]) -> tuple[float | None, float | None]:
    if not values:
        return None, None
    sd = statistics.stdev(values) if len(values) > 1 else None
    return statistics.fmean(values), sd


def summarise(cells: dict[tuple[str, str, int], dict[str, float]]) -> list[dict]:
    rows = []
    groups = sorted({(d, m) for d, m, _ in cells}, key=lambda k: (k[0], ORDER.get(k[1], 9)))
    for dataset, method in groups:
        seeds = sorted(s for d, m, s in cells if (d, m) == (dataset, method))
        row: dict = {"dataset": dataset, "method": method, "seeds": seeds}
        row["epsilon"] = None if method == "eps-inf" else float(method.split("-")[1])
        for col in FIGURES.values():
            vals = [
                cells[(dataset, method, s)][col]
                for s in seeds
                if col in cells[(dataset, method, s)]
            ]
            row[col], row[col + "_sd"] = mean_sd(vals)
        gaps, ratios = [], []
        for s in seeds:
            base = cells.get((dataset, "eps-inf", s))
            here = cells[(dataset, method, s)]
            if base and "tstr_auc" in base and "tstr_auc" in here:
                gaps.append(here["tstr_auc"] - base["tstr_auc"])
            if base and base.get("fit_cpu_seconds") and "fit_cpu_seconds" in here:
                ratios.append(here["fit_cpu_seconds"] / base["fit_cpu_seconds"])
        row["tstr_gap"], row["tstr_gap_sd"] = mean_sd(gaps)
        row["fit_time_ratio"], row["fit_time_ratio_sd"] = mean_sd(ratios)
        row["paired_seeds"] = len(gaps)
        rows.append(row)
    return rows


def fmt(value: float | None, sd: float | None = None, digits: int = 3) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "–"
    text = f"{value:.{digits}f}"
    return text + (f" ± {sd:.{digits}f}" if sd is not None else "")


def curve_table(rows: list[dict]) -> str:
    head = (
        "| dataset | ε | seeds | TSTR AUC | Δ TSTR vs ε = ∞ | detection AUC | DCR ratio | "
        "MIA AUC (distance) | MIA AUC (density) | fit s (wall) | fit CPU time ÷ ε = ∞ |\n"
        "|---|---|---|---|---|---|---|---|---|---|---|\n"
    )
    lines = []
    for r in rows:
        eps = "∞" if r["epsilon"] is None else f"{r['epsilon']:g}"
        gap = "–" if r["method"] == "eps-inf" else fmt(r["tstr_gap"], r["tstr_gap_sd"])
        ratio = "1" if r["method"] == "eps-inf" else fmt(r["fit_time_ratio"], None, 1)
        lines.append(
            f"| {r['dataset']} | {eps} | {len(r['seeds'])} | "
            f"{fmt(r['tstr_auc'], r['tstr_auc_sd'])} | {gap} | "
            f"{fmt(r['detection_auc'], r['detection_auc_sd'])} | "
            f"{fmt(r['dcr_ratio'], r['dcr_ratio_sd'], 2)} | "
            f"{fmt(r['mia_auc_distance'], r['mia_auc_distance_sd'])} | "
            f"{fmt(r['mia_auc_density'], r['mia_auc_density_sd'])} | "
            f"{fmt(r['fit_seconds'], None, 0)} | {ratio} |"
        )
    return head + "\n".join(lines) + "\n"


def audit_table(rows: list[dict]) -> str:
    head = (
        "| dataset | ε | canaries trained | exposure, bits (95 % interval) | reference | "
        "most exposed / ceiling | p | exact copies (ref.) | near copies (ref.) | sampled rows |\n"
        "|---|---|---|---|---|---|---|---|---|---|\n"
    )
    lines = []
    for r in rows:
        eps = "∞" if r["epsilon"] is None else f"{r['epsilon']:g}"
        lo, hi = r["exposure_interval"]
        lines.append(
            f"| {r['dataset']} | {eps} | {r['canaries_in_training']} | "
            f"{r['exposure_mean']:.2f} ({lo:.2f}–{hi:.2f}) | {r['exposure_reference']:.2f} | "
            f"{r['exposure_max']:.2f} / {r['max_possible']:.1f} | {r['exposure_p_value']:.3f} | "
            f"{r['reproduced_exact']:.0f} ({r['reproduced_exact_reference']:.0f}) | "
            f"{r['reproduced_near']:.0f} ({r['reproduced_near_reference']:.0f}) | "
            f"{r['samples']:,} |"
        )
    return head + "\n".join(lines) + "\n"


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--results", type=Path, required=True, help="results.csv of the dp benchmark")
    p.add_argument("--audit", type=Path, help="audit.json of benchmarks/dp_audit.py")
    p.add_argument("--out", type=Path, required=True)
    p.add_argument("--note", default="", help="a line on how and where it ran")
    args = p.parse_args()
    curve = summarise(read_cells(args.results))
    audit = json.loads(args.audit.read_text(encoding="utf-8")) if args.audit else []
    args.out.mkdir(parents=True, exist_ok=True)
    data = {"curve": curve, "audit": audit, "note": args.note}
    tmp = args.out / "summary.json.tmp"
    tmp.write_text(json.dumps(data, indent=1), encoding="utf-8")
    tmp.replace(args.out / "summary.json")
    text = "# Differential privacy: the ε–utility curve and the canary audit\n\n"
    if args.note:
        text += args.note + "\n\n"
    text += "## ε–utility curve (tabular-lm, mean ± sd over seeds)\n\n" + curve_table(curve)
    if audit:
        text += "\n## Canary audit (10 canaries, 10,000 candidates)\n\n" + audit_table(audit)
    tmp = args.out / "summary.md.tmp"
    tmp.write_text(text, encoding="utf-8")
    tmp.replace(args.out / "summary.md")
    print(text)


if __name__ == "__main__":
    main()
