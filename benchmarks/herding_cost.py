#!/usr/bin/env python
"""What kernel herding costs when sampling: seconds of ``sample(n)`` by pool factor.

tabular-lm is fitted once on nafld1's 2,500-row sample (the small-data cells' table, its
training split), then ``sample(n, seed=…)`` is timed for each ``n`` and pool factor
(``herding``), the median of ``--repeats`` runs, and the share of the time herding itself takes
(the kernel and the greedy choice, timed apart). Run it on a quiet machine:

    python benchmarks/herding_cost.py --out docs/benchmark-results/small-data/draws/cost.json
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import time
import warnings
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
from small_data import split  # noqa: E402


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--out", type=Path, required=True)
    p.add_argument("--sizes", nargs="+", type=int, default=[10, 50, 500, 2000])
    p.add_argument("--factors", nargs="+", type=int, default=[1, 5, 10, 20])
    p.add_argument("--repeats", type=int, default=3)
    a = p.parse_args()
    warnings.filterwarnings("ignore")
    from healthsynth.generators import _herding
    from healthsynth.generators.tabular_lm import TabularLM

    train, _, schema = split("nafld1", "all", 0)
    gen = TabularLM(seed=0).fit(train, schema=schema)
    herd_seconds: list[float] = []
    original = _herding.herd

    def timed(*args, **kw):
        t = time.perf_counter()
        out = original(*args, **kw)
        herd_seconds.append(time.perf_counter() - t)
        return out

    _herding.herd = timed
    rows = []
    for n in a.sizes:
        for k in a.factors:
            gen.herding = k
            walls, herds = [], []
            for r in range(a.repeats):
                herd_seconds.clear()
                t = time.perf_counter()
                gen.sample(n, seed=r)
                walls.append(time.perf_counter() - t)
                herds.append(sum(herd_seconds))
            rows.append(
                {
                    "n": n,
                    "herding": k,
                    "seconds": round(float(np.median(walls)), 3),
                    "herd_seconds": round(float(np.median(herds)), 3),
                    "threads": gen.sampling_threads_,
                }
            )
            print(rows[-1], flush=True)
    info = {"machine": platform.processor() or platform.machine(), "rows": rows}
    a.out.parent.mkdir(parents=True, exist_ok=True)
    a.out.write_text(json.dumps(info, indent=1))


if __name__ == "__main__":
    main()
