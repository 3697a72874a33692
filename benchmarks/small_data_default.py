#!/usr/bin/env python
"""Check that tabular-lm as shipped reproduces the ablation's ``label`` variant.

``benchmarks/small_data.py`` scores the label model written inline (``relabel``) on rows of a
fitted tabular-lm. This script fits the packaged ``TabularLM`` with its defaults (the label
model decides itself, ``label_model=None``) on the same cells, samples 1,000 rows and scores
their TSTR AUC, next to the ablation cell's ``tstr_auc_big`` of ``tabular-lm:base:label`` and
``tabular-lm:base:lm`` (1,000 rows too, other sampling seeds):

    OMP_NUM_THREADS=1 python benchmarks/small_data_default.py --out benchmarks/out/small-data \
        --datasets pima gbsg pbc --sizes 150 --seeds 0 1 2 3 4 --workers 2

Writes ``OUT/default-check-SIZES.json`` and prints a table; the ablation's cells must exist.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import warnings
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from small_data import BIG, split, tstr_big  # noqa: E402


def _one(args: tuple[str, int, int, str]) -> dict:
    name, size, seed, out = args
    from healthsynth.generators.tabular_lm import TabularLM

    warnings.filterwarnings("ignore")
    train, hold, schema = split(name, size, seed)
    gen = TabularLM(seed=seed, threads=1).fit(train, schema=schema)
    shipped = tstr_big(gen.sample(BIG, seed=seed + 2000), hold, schema, seed)
    cell = json.loads((Path(out) / "cells" / f"{name}-n{size}-s{seed}.json").read_text())
    ref = {r["method"]: r.get("tstr_auc_big") for r in cell["results"]}
    return {"dataset": name, "size": size, "seed": seed, "label_model": gen.training_record_[
        "label_model"], "shipped": shipped, "ablation_label": ref["tabular-lm:base:label"],
        "ablation_lm": ref["tabular-lm:base:lm"]}  # fmt: skip


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", type=Path, default=Path("benchmarks/out/small-data"))
    ap.add_argument("--datasets", nargs="+", default=["pima", "gbsg", "pbc"])
    ap.add_argument("--sizes", nargs="+", type=int, default=[150])
    ap.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2, 3, 4])
    ap.add_argument("--workers", type=int, default=1)
    a = ap.parse_args()
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    todo = [(d, s, k, str(a.out)) for d in a.datasets for s in a.sizes for k in a.seeds]
    if a.workers > 1:
        import multiprocessing as mp

        with mp.get_context("spawn").Pool(a.workers) as pool:
            rows = pool.map(_one, todo)
    else:
        rows = [_one(t) for t in todo]
    import pandas as pd

    df = pd.DataFrame(rows)
    name = "default-check-" + "-".join(map(str, a.sizes)) + ".json"
    tmp = a.out / (name + ".tmp")
    tmp.write_text(json.dumps(rows, indent=1))
    os.replace(tmp, a.out / name)
    cols = ["shipped", "ablation_label", "ablation_lm"]
    print(df.groupby(["dataset", "size"])[cols].agg(["mean", "std"]).round(3).to_string())
    d = df.shipped - df.ablation_label
    print(f"shipped - ablation label: {d.mean():+.3f} ± {d.std():.3f} over {len(d)} cells")


if __name__ == "__main__":
    main()
