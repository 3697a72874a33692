#!/usr/bin/env python
"""Benchmark: ``healthsynth sample`` through the CLI, process start included.

Two figures from issue 13, measured as a user sees them (wall time of the whole command):

* ``healthsynth sample MODEL -n 10``: dominated by starting Python, importing and loading;
* ``healthsynth sample MODEL -n 20000``: rows per second end to end, on a 19-column table;
* with ``--timeline-model``: ``healthsynth sample TIMELINE_MODEL -n 500`` (patients per second
  end to end, CSV tables).

The model is tabular-lm with default settings on survival/pbc (identifiers dropped: 19
columns), fitted once (``--fit-seconds`` of training; speed does not depend on how well it
learned) by the first source tree, so that every tree can load it (a format-1 folder when the
first tree is the old code). With ``--fit-each`` every tree fits its own model instead (same
data, seed and seconds), so a change in what a new model is (its activation, say) shows in the
sampling speed a user gets. Each source tree (``--src NAME=PATH``, put first on PYTHONPATH)
runs the same commands in turn, ``--repeats`` times; the median is reported, next to the time
of ``python -c "import torch"`` measured the same way.

    .venv/bin/python benchmarks/start_time.py --out benchmarks/out/start \
        [--src new=src --src old=/path/to/old/src] [--repeats 5] [--fit-each]

Results: ``OUT/start_time.json`` and a markdown table on stdout (committed copy:
docs/benchmark-results/engine.md).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CLI = str(Path(sys.executable).parent / "healthsynth")

FIT = """
import sys, warnings
warnings.simplefilter("ignore")
from healthsynth.data import infer_schema, load_dataset
from healthsynth.generators.tabular_lm import TabularLM
df = load_dataset("survival/pbc")
df = df[[c.name for c in infer_schema(df).modelled]]
TabularLM(seed=0, max_time={seconds}, privacy_stop=False).fit(df).save(sys.argv[1])
"""


def env_for(src: str) -> dict[str, str]:
    env = {**os.environ, "PYTHONPATH": src, "HF_HUB_OFFLINE": "1"}
    env.pop("OMP_NUM_THREADS", None)
    env.pop("HEALTHSYNTH_THREADS", None)
    return env


def timed(cmd: list[str], env: dict[str, str]) -> tuple[float, float, float]:
    """Wall seconds, CPU seconds (user + system) and peak memory (MB) of a command."""
    t0 = time.perf_counter()
    proc = subprocess.Popen(
        cmd, env=env, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
    )
    _, status, usage = os.wait4(proc.pid, 0)  # this child's own resource use
    wall = time.perf_counter() - t0
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode != 0:
        raise subprocess.CalledProcessError(proc.returncode, cmd, stderr=proc.stderr.read())
    proc.stderr.close()
    return wall, usage.ru_utime + usage.ru_stime, usage.ru_maxrss / 1024


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "out" / "start")
    p.add_argument("--src", action="append", default=None, help="NAME=PATH of a source tree")
    p.add_argument("--model", type=Path, help="a tabular-lm folder (default: fit one)")
    p.add_argument("--fit-seconds", type=float, default=30.0)
    p.add_argument(
        "--fit-each",
        action="store_true",
        help="each tree fits its own model (its own defaults, e.g. its activation) and samples it",
    )
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--timeline-model", type=Path, help="a timeline-lm folder to time as well")
    p.add_argument("--patients", type=int, default=500)
    a = p.parse_args()
    a.out.mkdir(parents=True, exist_ok=True)
    sources = dict(s.split("=", 1) for s in (a.src or [f"current={ROOT / 'src'}"]))
    models = {name: a.model or a.out / "model" for name in sources}
    if a.fit_each and a.model is None:
        models = {name: a.out / f"model-{name}" for name in sources}
    for name, model in models.items():
        if not model.exists():
            # without --fit-each, the first tree fits the one model every tree samples
            src = sources[name] if a.fit_each else next(iter(sources.values()))
            code = FIT.format(seconds=a.fit_seconds)
            subprocess.run([sys.executable, "-c", code, str(model)], env=env_for(src), check=True)
    runs: dict[str, dict[str, list[tuple[float, float]]]] = {n: {} for n in sources}
    for _ in range(a.repeats):
        for name, src in sources.items():
            env = env_for(src)
            r = runs[name]
            r.setdefault("import_torch", []).append(
                timed([sys.executable, "-c", "import torch"], env)
            )
            for n in (10, 20_000):
                out = a.out / f"{name}-{n}.csv"
                cmd = [CLI, "sample", str(models[name]), "-n", str(n), "-o", str(out)]
                cmd += ["--seed", "0"]
                r.setdefault(f"sample_{n}", []).append(timed(cmd, env))
            if a.timeline_model is not None:
                out = a.out / f"{name}-timelines"
                cmd = [CLI, "sample", str(a.timeline_model), "-n", str(a.patients)]
                cmd += ["-o", str(out), "--seed", "0"]
                r.setdefault("sample_timelines", []).append(timed(cmd, env))
    summary = {}
    for name, r in runs.items():
        med = {k: round(statistics.median(x[0] for x in v), 2) for k, v in r.items()}
        med.update({f"{k}_cpu": round(statistics.median(x[1] for x in v), 2) for k, v in r.items()})
        med.update({f"{k}_peak_mb": round(max(x[2] for x in v)) for k, v in r.items()})
        med["rows_per_second_20000"] = round(20_000 / med["sample_20000"])
        if "sample_timelines" in med:
            med["patients_per_second"] = round(a.patients / med["sample_timelines"], 1)
        summary[name] = med
    result = {
        "model": {name: str(m) for name, m in models.items()},
        "cpu_count": os.cpu_count(),
        "load_average": os.getloadavg(),
        "repeats": a.repeats,
        "runs": runs,
        "summary": summary,
    }
    (a.out / "start_time.json").write_text(json.dumps(result, indent=1))
    lines = [
        "Wall seconds (CPU seconds, user + system), medians:",
        "",
        "| source | `import torch` | `sample -n 10` | `sample -n 20000` | rows/s (20,000) "
        "| peak memory, 20,000 (MB) |",
        "|---|---|---|---|---|---|",
    ]
    for name, m in summary.items():
        cells = [f"{m[k]} ({m[k + '_cpu']})" for k in ("import_torch", "sample_10", "sample_20000")]
        lines.append(
            f"| {name} | {' | '.join(cells)} | {m['rows_per_second_20000']:,} "
            f"| {m['sample_20000_peak_mb']:,} |"
        )
    if a.timeline_model is not None:
        lines += [
            "",
            f"| source | `sample` {a.patients} patients (s) | patients/s | peak memory (MB) |",
            "|---|---|---|---|",
        ]
        lines += [
            f"| {name} | {m['sample_timelines']} ({m['sample_timelines_cpu']}) | "
            f"{m['patients_per_second']} | {m['sample_timelines_peak_mb']:,} |"
            for name, m in summary.items()
        ]
    print("\n".join(lines))


if __name__ == "__main__":
    main()
