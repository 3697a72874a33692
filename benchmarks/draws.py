#!/usr/bin/env python
"""How tabular-lm draws its rows, at small training sizes: temperature and kernel herding.

For every (dataset, size, seed) cell of ``benchmarks/small_data.py`` (the same splits),
tabular-lm is fitted once with its defaults (one thread) and sampled under each sampling
setting given (``--variants temperature=0.8 herding=20 …``; the target is still redrawn by the
label model) and under the base setting, independent draws at temperature 1 (``herding=1``).
Per setting: TSTR AUC of as many rows as training rows (mean over ``--draws`` sampling seeds);
on the first of those tables detection AUC, DCR median ratio, exact-copy rate and distance
membership-inference AUC (``small_data.score``); with ``--big``, TSTR AUC of 1,000 rows.

    OMP_NUM_THREADS=1 python benchmarks/draws.py --out benchmarks/out/draws \\
        --variants herding=5 herding=20 --sizes 50 150 500 all

One JSON file per cell under ``OUT`` (a finished cell is not run again; a cell missing a
setting asked for gets it added), then the mean of each figure and each setting's paired
difference from the base (committed: docs/benchmark-results/small-data/draws/).
"""

from __future__ import annotations

import argparse
import json
import sys
import warnings
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
from small_data import BIG, DATASETS, score, split, tstr_big  # noqa: E402

#: Tables the ablation never used, for a check that a setting carries over (``--datasets``).
UNSEEN = {
    "colon": {"source": "survival/colon", "drop": ["id", "study"], "target": "status",
              "sensitive": ["sex"], "max_rows": 2500},
    "flchain": {"source": "survival/flchain", "drop": ["chapter"], "target": "death",
                "sensitive": ["sex"], "max_rows": 2500},
    "diabetic": {"source": "survival/diabetic", "drop": ["id"], "target": "status",
                 "sensitive": ["eye"]},
    "birthwt": {"source": "MASS/birthwt", "drop": ["bwt"], "target": "low", "sensitive": ["race"]},
}  # fmt: skip
DATASETS.update(UNSEEN)  # at import, so that worker processes see them too

BASE = {"herding": 1, "temperature": 1.0}
FIGURES = ("tstr", "tstr_big", "detection_auc", "dcr_median_ratio", "exact_copy_rate", "mia_auc")


def setting(variant: str) -> dict:
    """``"herding=20"`` -> the base settings with that one changed."""
    if variant == "base":
        return dict(BASE)
    key, value = variant.split("=")
    return {**BASE, key: type(BASE[key])(float(value)) if key == "herding" else float(value)}


class Herded:
    """Another generator's rows, herded from outside: ``sample(n)`` herds ``herding × n`` rows."""

    def __init__(self, gen, schema) -> None:
        self.gen, self.schema, self.herding = gen, schema, 1

    def sample(self, n: int, *, seed: int):
        from healthsynth.generators._herding import herd

        pool = self.gen.sample(n * self.herding, seed=seed)
        return pool.iloc[herd(pool, n, self.schema)].reset_index(drop=True)


def fitted(generator: str, train, schema, seed: int):
    from healthsynth.generators import registry
    from healthsynth.generators.tabular_lm import TabularLM

    if generator == "tabular-lm":
        return TabularLM(seed=seed, threads=1).fit(train, schema=schema)
    return Herded(registry.get(generator)(seed=seed).fit(train, schema=schema), schema)


def cell(args: tuple) -> None:
    name, size, seed, out, variants, draws, big, generator = args
    warnings.filterwarnings("ignore")
    train, hold, schema = split(name, size, seed)
    if size != "all" and len(train) < int(size):
        return
    path = Path(out) / f"{name}-n{size}-s{seed}.json"
    res = json.loads(path.read_text()) if path.exists() else {}
    todo = [v for v in ["base", *variants] if v not in res]
    if not todo:
        return
    gen = fitted(generator, train, schema, seed)
    res.update({"dataset": name, "size": size, "seed": seed, "n_train": len(train)})
    res["generator"] = generator
    for v in todo:
        for key, value in setting(v).items():
            setattr(gen, key, value)
        tables = [gen.sample(len(train), seed=seed + 100 + d) for d in range(draws)]
        figs = score(train, tables[0], hold, schema, seed)
        res[v] = {
            "tstr": float(np.mean([tstr_big(s, hold, schema, seed) for s in tables])),
            **{k: figs.get(k) for k in FIGURES[2:]},
        }
        if big:
            res[v]["tstr_big"] = tstr_big(gen.sample(BIG, seed=seed + 200), hold, schema, seed)
    path.write_text(json.dumps(res))
    print(name, size, seed, flush=True)


def summary(out: Path) -> None:
    cells = [json.loads(f.read_text()) for f in sorted(out.glob("*.json"))]
    for size in sorted({c["size"] for c in cells}, key=str):
        rs = [c for c in cells if c["size"] == size]
        names = sorted({k for r in rs for k, v in r.items() if isinstance(v, dict)})
        print(f"size {size}: {len(rs)} cells")
        for v in ["base"] + [n for n in names if n != "base"]:
            both = [r for r in rs if v in r]
            parts = []
            for k in FIGURES:
                if not all(k in r[v] and k in r["base"] for r in both):
                    continue
                a = np.array([r[v][k] for r in both], dtype=float)
                d = a - np.array([r["base"][k] for r in both], dtype=float)
                sd = np.nanstd(d, ddof=1) if len(d) > 1 else 0.0
                parts.append(f"{k} {np.nanmean(a):.3f} ({np.nanmean(d):+.3f} ± {sd:.3f})")
            print(f"  {v} [{len(both)}]: " + "  ".join(parts))


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--out", type=Path, required=True)
    p.add_argument("--datasets", nargs="+", default=[d for d in DATASETS if d not in UNSEEN])
    p.add_argument("--sizes", nargs="+", default=["50", "150"])
    p.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2, 3, 4])
    p.add_argument("--variants", nargs="+", default=["herding=20"])
    p.add_argument("--draws", type=int, default=3)
    p.add_argument("--big", action="store_true", help="also TSTR AUC of 1,000 rows")
    p.add_argument("--workers", type=int, default=2)
    p.add_argument(
        "--generator", default="tabular-lm", help="another generator's rows are herded outside it"
    )
    p.add_argument("--summary", action="store_true", help="only print the summary of OUT")
    a = p.parse_args()
    a.out.mkdir(parents=True, exist_ok=True)
    if not a.summary:
        sizes = [s if s == "all" else int(s) for s in a.sizes]
        jobs = [
            (n, s, seed, str(a.out), a.variants, a.draws, a.big, a.generator)
            for s in sizes
            for n in a.datasets
            for seed in a.seeds
        ]
        with ProcessPoolExecutor(a.workers) as pool:
            list(pool.map(cell, jobs))
    summary(a.out)


if __name__ == "__main__":
    main()
