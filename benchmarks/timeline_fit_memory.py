#!/usr/bin/env python
"""Benchmark: a timeline-lm fit's resident memory against its live memory (glibc's accounting).

For each source tree (``--src NAME=PATH``, run one after the other in fresh processes), fits
``timeline-lm`` on the full cohort for ``--max-time`` seconds while a thread samples, every 10 ms,
the process's resident memory and glibc's ``mallinfo2`` (bytes in use, in the heap and in
mappings). The gap between the two is memory the allocator holds but cannot reuse.

    .venv/bin/python benchmarks/timeline_fit_memory.py --max-time 180 \\
        --src old=/path/to/old/src --src new=src --out /tmp/fitmem.json

Linux with glibc only. Run it on a quiet machine.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

CHILD = r"""
import ctypes, json, sys, threading, time
class MI2(ctypes.Structure):
    _fields_ = [(n, ctypes.c_size_t) for n in ("arena", "ordblks", "smblks", "hblks", "hblkhd",
                "usmblks", "fsmblks", "uordblks", "fordblks", "keepcost")]
libc = ctypes.CDLL(None)
libc.mallinfo2.restype = MI2
def rss_mb():
    with open("/proc/self/statm") as fh:
        return int(fh.read().split()[1]) * 4096 / 2**20
peak = {"rss_mb": 0.0, "live_mb": 0.0}
stop = False
def watch():
    while not stop:
        m = libc.mallinfo2()
        peak["live_mb"] = max(peak["live_mb"], (m.uordblks + m.hblkhd) / 2**20)
        peak["rss_mb"] = max(peak["rss_mb"], rss_mb())
        time.sleep(0.01)
threading.Thread(target=watch, daemon=True).start()
import warnings
from healthsynth.data import load_timelines
from healthsynth.generators.timeline_lm import TimelineLM
ds = load_timelines(sys.argv[2])
with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    gen = TimelineLM(max_time=float(sys.argv[1]), seed=0).fit(ds, code_map=sys.argv[2])
stop = True
rec = gen.training_record_
keys = ("tokens_per_second", "steps", "epochs_run", "best_val_nll_per_token", "torch_threads",
        "torch_threads_changes", "calibration")
print(json.dumps({**{k: rec.get(k) for k in keys}, **{k: round(v, 1) for k, v in peak.items()}}))
"""


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--src", action="append", required=True, help="NAME=PATH to a src folder")
    ap.add_argument("--dataset", default="nafld")
    ap.add_argument("--max-time", type=float, default=180.0)
    ap.add_argument("--out", type=Path, default=None)
    args = ap.parse_args()
    results = {}
    for spec in args.src:
        name, _, path = spec.partition("=")
        env = {**os.environ, "PYTHONPATH": str(Path(path).resolve())}
        cmd = [sys.executable, "-c", CHILD, str(args.max_time), args.dataset]
        out = subprocess.run(cmd, env=env, capture_output=True, text=True, check=True)
        results[name] = json.loads(out.stdout.strip().splitlines()[-1])
        print(name, results[name], flush=True)
    results["load_after"] = os.getloadavg()
    if args.out is not None:
        args.out.write_text(json.dumps(results, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
