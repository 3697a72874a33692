#!/usr/bin/env python
"""Fit one *peer* synthetic-data generator on a CSV table and sample from it.

Benchmark-only. Run with the peers venv's interpreter (see ``setup.sh``)::

    .venv-peers/bin/python benchmarks/peers/run_peer.py \
        --method realtabformer --train train.csv --n 1000 --out synth.csv \
        --seed 0 --time-budget 1200 --record record.json

Methods:
  realtabformer    REaLTabFormer 0.2.4, model_type="tabular" (GPT-2 trained from
                   scratch, default config). Training is capped by wall time
                   (--time-budget) and/or epochs (--epochs).
  gaussian-copula  SDV 2.x GaussianCopulaSynthesizer, default settings.
  ctgan            SDV 2.x CTGANSynthesizer, default settings (300 epochs) unless
                   --epochs is given.

Nothing here is imported by healthsynth; the peers' licences (SDV & co. are
BUSL-1.1) keep them out of the package's dependencies.
"""

from __future__ import annotations

import os

# No hub access on the benchmark machines, and nothing may be downloaded:
# set these before transformers / datasets / huggingface_hub are imported.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")
os.environ.setdefault("WANDB_DISABLED", "true")
os.environ.setdefault("WANDB_MODE", "disabled")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

import argparse
import json
import math
import platform
import random
import resource
import shutil
import sys
import tempfile
import time
import warnings
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

METHODS = ("realtabformer", "gaussian-copula", "ctgan")

# Used when REaLTabFormer is run with neither --time-budget nor --epochs: its
# own default (1000 epochs) would take days on 2 CPU cores.
RTF_DEFAULT_TIME_BUDGET_S = 1200.0

# The string pandas 2 turns a missing text value into when REaLTabFormer calls
# .astype(str); the library maps it back to NaN after sampling. We apply the
# same encoding ourselves so that it does not depend on the pandas version
# (pandas 3's string dtype keeps NaN through astype(str), which breaks the
# library's vocabulary building).
RTF_TEXT_NA_TOKEN = "<NA>"


def _pkg_version(name: str) -> str | None:
    try:
        return version(name)
    except PackageNotFoundError:
        return None


def _peak_rss_mb() -> float:
    # Linux reports ru_maxrss in kilobytes.
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def _seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    try:
        import torch

        torch.manual_seed(seed)
    except ImportError:  # pragma: no cover - torch is always in the peers venv
        pass


def _log(msg: str) -> None:
    print(f"[run_peer {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


# --------------------------------------------------------------------------
# REaLTabFormer
# --------------------------------------------------------------------------


def _rtf_encode_text_na(df: pd.DataFrame) -> tuple[pd.DataFrame, dict[str, str]]:
    """Replace missing values in non-numeric columns by an explicit token.

    Returns the new frame and {column: token} for the columns changed. Numeric
    columns are left alone: REaLTabFormer handles their missing values itself.
    """
    df = df.copy()
    tokens: dict[str, str] = {}
    for col in df.columns:
        s = df[col]
        if pd.api.types.is_numeric_dtype(s.dtype) or pd.api.types.is_datetime64_any_dtype(s.dtype):
            continue
        obj = s.astype(object)
        if obj.isna().any():
            present = set(obj.dropna().astype(str))
            token = RTF_TEXT_NA_TOKEN
            while token in present:  # never collide with a real value
                token = "<" + token + ">"
            obj = obj.where(obj.notna(), token)
            tokens[col] = token
        df[col] = obj.astype(str).astype(object)
    return df, tokens


def _rtf_decode_text_na(df: pd.DataFrame, tokens: dict[str, str]) -> pd.DataFrame:
    df = df.copy()
    for col, token in tokens.items():
        s = df[col].astype(object)
        df[col] = s.where(s != token, np.nan)
    return df


def run_realtabformer(df: pd.DataFrame, args: argparse.Namespace, rec: dict[str, Any]):
    import torch
    import transformers
    from realtabformer import REaLTabFormer
    from transformers import TrainerCallback

    settings = rec["settings"]
    deviations = rec["deviations_from_defaults"]

    time_budget = args.time_budget
    if time_budget is None and args.epochs is None:
        time_budget = RTF_DEFAULT_TIME_BUDGET_S
        deviations.append(
            f"no --time-budget or --epochs given: wall-time cap of {time_budget:.0f} s "
            "applied (the library default of 1000 epochs would take days on 2 CPU cores)"
        )
    epochs = args.epochs if args.epochs is not None else 1000  # library default
    if args.epochs is not None:
        deviations.append(f"epochs capped at {args.epochs} (library default 1000)")
    if time_budget is not None:
        deviations.append(
            f"training stopped once fit() had run {time_budget:.0f} s of wall time (checked "
            "after every micro-batch of 8 rows; the model as it stands then is used)"
        )

    work_dir = Path(tempfile.mkdtemp(prefix="rtf-", dir=args.work_dir))

    state: dict[str, Any] = {"stopped_by_time": False, "fit_start": None, "epoch_end_s": []}

    class WallTimeBudget(TrainerCallback):
        """Stop the HF Trainer once the fit has used its wall-time budget.

        Checked after every micro-batch (on_substep_end, between gradient
        accumulation steps) and every optimizer step (on_step_end); the Trainer
        leaves its loops as soon as control.should_training_stop is set, so the
        overshoot is at most one micro-batch of 8 rows.
        """

        def _check(self, control):
            if time_budget is None or state["stopped_by_time"]:
                return control
            if time.perf_counter() - state["fit_start"] >= time_budget:
                state["stopped_by_time"] = True
                control.should_training_stop = True
            return control

        def on_train_begin(self, targs, tstate, control, **kwargs):
            state["train_begin_s"] = time.perf_counter() - state["fit_start"]
            return control

        def on_substep_end(self, targs, tstate, control, **kwargs):
            return self._check(control)

        def on_step_end(self, targs, tstate, control, **kwargs):
            return self._check(control)

        def on_epoch_end(self, targs, tstate, control, **kwargs):
            elapsed = time.perf_counter() - state["fit_start"]
            if not state["stopped_by_time"]:
                state["epoch_end_s"].append(round(elapsed, 2))
                _log(
                    f"realtabformer: epoch {tstate.epoch:.2f} done, optimizer step "
                    f"{tstate.global_step}, {elapsed:.0f} s into fit"
                )
            return control

        def on_train_end(self, targs, tstate, control, **kwargs):
            elapsed = time.perf_counter() - state["fit_start"]
            why = "wall-time budget reached" if state["stopped_by_time"] else "epochs done"
            _log(
                f"realtabformer: training ended ({why}) at epoch {tstate.epoch:.2f}, "
                f"optimizer step {tstate.global_step}, {elapsed:.0f} s into fit"
            )
            return control

    class BudgetedREaLTabFormer(REaLTabFormer):
        # Every HF Trainer REaLTabFormer builds for the tabular model goes through
        # this method; adding the callback here leaves fit() itself untouched.
        def _build_tabular_trainer(self, *a, **kw):
            trainer = super()._build_tabular_trainer(*a, **kw)
            trainer.add_callback(WallTimeBudget())
            state["trainer"] = trainer
            return trainer

    training_args = dict(
        # Seed for the HF Trainer (data order, dropout). REaLTabFormer's own
        # random_state seeds python/numpy/torch in fit() but not the Trainer,
        # whose default seed is 42 whatever random_state is.
        seed=args.seed,
        data_seed=args.seed,
        # No experiment trackers, no progress bars in benchmark logs. Neither
        # changes the model.
        report_to="none",
        disable_tqdm=True,
        use_cpu=not torch.cuda.is_available(),
    )
    device = "cuda" if torch.cuda.is_available() else "cpu"

    model = BudgetedREaLTabFormer(
        model_type="tabular",  # default tabular config: GPT-2, 6 layers, from scratch
        epochs=epochs,
        random_state=args.seed,
        checkpoints_dir=str(work_dir / "checkpoints"),
        samples_save_dir=str(work_dir / "samples"),
        full_save_dir=str(work_dir / "full_save"),
        **training_args,
    )

    fit_df, na_tokens = _rtf_encode_text_na(df)
    if na_tokens:
        deviations.append(
            "missing values in text columns "
            f"{sorted(na_tokens)} encoded as an explicit token before fit and decoded to "
            "NaN after sampling (what the library does itself under pandas 2; done here "
            "so it also holds under pandas 3)"
        )

    # n_critic=0 disables REaLTabFormer's default "sensitivity"-based early
    # stopping: before training it bootstraps (num_bootstrap=500) a distance-based
    # overfitting threshold, then trains in rounds of n_critic=5 epochs and after
    # each round samples 3 x frac(0.165) x n_rows rows to compare with it. On two CPU
    # cores a round is ~10 min on a 2,400-row table, so within a benchmark's wall
    # time it would stop nothing and only add the bootstrap and sampling time.
    # With n_critic=0, fit() trains a plain HF Trainer over all rows (default
    # train_size=1: no eval split, no early stopping) and keeps the last model.
    fit_kwargs = dict(device=device, n_critic=0)
    deviations.append(
        "fit(n_critic=0): sensitivity-based early stopping disabled (default n_critic=5 "
        "adds a 500-sample bootstrap before training and a sampling round every 5 epochs; "
        "a wall-time cap makes it moot and it would eat into the budget); the last "
        "model is kept instead of the best-sensitivity checkpoint"
    )
    settings.update(
        model_type="tabular",
        tabular_config="library default (GPT2Config(n_layer=6): 6 layers x 768)",
        epochs_max=epochs,
        time_budget_s=time_budget,
        batch_size=model.batch_size,
        gradient_accumulation_steps=model.training_args_kwargs.get("gradient_accumulation_steps"),
        train_size=model.train_size,
        fit_kwargs=dict(fit_kwargs),
        trainer_extra_args=training_args,
        device=device,
        torch_threads=torch.get_num_threads(),
        sample_kwargs=dict(gen_batch=128),
    )

    try:
        state["fit_start"] = t0 = time.perf_counter()
        model.fit(fit_df, **fit_kwargs)
        fit_seconds = time.perf_counter() - t0

        trainer = state.get("trainer")
        tstate = trainer.state if trainer is not None else None
        if tstate is not None:
            epoch_float = float(tstate.epoch or 0.0)
            rec["epochs_completed"] = int(math.floor(epoch_float + 1e-9))
            rec["epochs_trained_fractional"] = round(epoch_float, 4)
            rec["optimizer_steps"] = int(tstate.global_step)
            train_losses = [e["train_loss"] for e in tstate.log_history if "train_loss" in e]
            rec["train_loss_mean"] = train_losses[-1] if train_losses else None
            rec["train_loss_history"] = [
                {"epoch": e.get("epoch"), "step": e.get("step"), "loss": e["loss"]}
                for e in tstate.log_history
                if "loss" in e
            ]
        rec["stopped_by_time_budget"] = state["stopped_by_time"]
        rec["seconds_before_first_step"] = round(state.get("train_begin_s", float("nan")), 2)
        rec["epoch_end_seconds"] = state["epoch_end_s"]

        transformers.set_seed(args.seed)  # generation draws from torch's RNG
        t1 = time.perf_counter()
        synth = model.sample(n_samples=args.n, device=device, gen_batch=128)
        sample_seconds = time.perf_counter() - t1
    finally:
        if not args.keep_work_dir:
            shutil.rmtree(work_dir, ignore_errors=True)
        else:
            rec["work_dir"] = str(work_dir)

    synth = _rtf_decode_text_na(synth, na_tokens)
    return synth, fit_seconds, sample_seconds


# --------------------------------------------------------------------------
# SDV (GaussianCopula, CTGAN)
# --------------------------------------------------------------------------

SDV_TABLE = "table"


def run_sdv(df: pd.DataFrame, args: argparse.Namespace, rec: dict[str, Any]):
    from sdv.metadata import Metadata
    from sdv.single_table import CTGANSynthesizer, GaussianCopulaSynthesizer

    settings = rec["settings"]
    deviations = rec["deviations_from_defaults"]

    metadata = Metadata.detect_from_dataframes({SDV_TABLE: df})
    settings["metadata"] = metadata.to_dict()

    if args.method == "gaussian-copula":
        synth_model = GaussianCopulaSynthesizer(metadata)
        if args.epochs is not None:
            deviations.append("--epochs ignored: GaussianCopula has no epochs")
        rec["epochs_completed"] = None
    else:
        kwargs: dict[str, Any] = {}
        if args.epochs is not None:
            kwargs["epochs"] = args.epochs
            deviations.append(f"epochs={args.epochs} (library default 300)")
        synth_model = CTGANSynthesizer(metadata, **kwargs)
    if args.time_budget is not None:
        deviations.append(
            "--time-budget not applied: SDV synthesizers have no wall-time stop; "
            "use --epochs to cap CTGAN"
        )
    settings["synthesizer_parameters"] = {
        k: (v if isinstance(v, (int, float, str, bool, type(None), list, dict)) else repr(v))
        for k, v in synth_model.get_parameters().items()
    }
    settings["time_budget_s"] = None

    # Fitting draws from the global numpy / torch generators (SDV offers no seed
    # for fit); sampling uses SDV's own random state, which it would otherwise
    # fix to a constant seed whatever --seed is.
    _seed_everything(args.seed)
    t0 = time.perf_counter()
    synth_model.fit({SDV_TABLE: df})
    fit_seconds = time.perf_counter() - t0

    if args.method == "ctgan":
        rec["epochs_completed"] = synth_model.epochs
        try:
            losses = synth_model.get_loss_values()
            rec["epochs_completed"] = int(losses["Epoch"].max()) + 1
            last = losses.iloc[-1]
            rec["final_losses"] = {
                "generator": float(last["Generator Loss"]),
                "discriminator": float(last["Discriminator Loss"]),
            }
        except Exception as exc:  # loss bookkeeping is informative only
            rec["final_losses_error"] = repr(exc)

    synth_model._set_random_state(args.seed)
    settings["seeding"] = (
        "fit: random/numpy/torch global seeds; sample: synthesizer._set_random_state(seed)"
    )
    t1 = time.perf_counter()
    out = synth_model.sample(num_rows=args.n)
    sample_seconds = time.perf_counter() - t1
    synth = out[SDV_TABLE] if isinstance(out, dict) else out
    return synth, fit_seconds, sample_seconds


# --------------------------------------------------------------------------


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--method", required=True, choices=METHODS)
    p.add_argument("--train", required=True, type=Path, help="training CSV")
    p.add_argument("--n", required=True, type=int, help="rows to sample")
    p.add_argument("--out", required=True, type=Path, help="synthetic CSV to write")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument(
        "--time-budget",
        type=float,
        default=None,
        help="wall-time cap on fitting, seconds (REaLTabFormer only; default 1200 s "
        "for REaLTabFormer when --epochs is not given either)",
    )
    p.add_argument(
        "--epochs",
        type=int,
        default=None,
        help="maximum epochs (REaLTabFormer default 1000, CTGAN default 300)",
    )
    p.add_argument("--record", required=True, type=Path, help="JSON record to write")
    p.add_argument(
        "--work-dir",
        default=None,
        help="where REaLTabFormer writes its checkpoints (a temporary folder inside "
        "it, removed afterwards); default: the system temp dir",
    )
    p.add_argument("--keep-work-dir", action="store_true", help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.n <= 0:
        p.error("--n must be positive")
    if args.epochs is not None and args.epochs <= 0:
        p.error("--epochs must be positive")
    if args.time_budget is not None and args.time_budget <= 0:
        p.error("--time-budget must be positive")
    return args


def main(argv=None) -> int:
    args = parse_args(argv)
    warnings.filterwarnings("ignore", category=FutureWarning)
    # SDV asks to save detected metadata; it is written into the record instead.
    warnings.filterwarnings("ignore", message=".*save_to_json.*")

    df = pd.read_csv(args.train)
    columns = list(df.columns)

    package = "realtabformer" if args.method == "realtabformer" else "sdv"
    rec: dict[str, Any] = {
        "method": args.method,
        "package": package,
        "package_version": _pkg_version(package),
        "versions": {
            n: _pkg_version(n)
            for n in (
                "realtabformer",
                "transformers",
                "torch",
                "sdv",
                "ctgan",
                "copulas",
                "rdt",
                "pandas",
                "numpy",
            )
        },
        "python": platform.python_version(),
        "train_csv": str(args.train),
        "out_csv": str(args.out),
        "n_train_rows": int(len(df)),
        "n_columns": int(df.shape[1]),
        "n_requested": args.n,
        "seed": args.seed,
        "settings": {"epochs_arg": args.epochs, "time_budget_arg": args.time_budget},
        "deviations_from_defaults": [],
        "status": "running",
    }
    _seed_everything(args.seed)
    _log(f"{args.method}: {len(df)} rows x {df.shape[1]} columns from {args.train}")

    try:
        if args.method == "realtabformer":
            synth, fit_s, sample_s = run_realtabformer(df, args, rec)
        else:
            synth, fit_s, sample_s = run_sdv(df, args, rec)
    except BaseException as exc:
        rec["status"] = "failed"
        rec["error"] = f"{type(exc).__name__}: {exc}"
        rec["peak_rss_mb"] = round(_peak_rss_mb(), 1)
        args.record.parent.mkdir(parents=True, exist_ok=True)
        args.record.write_text(json.dumps(rec, indent=2, default=str) + "\n")
        raise

    missing = [c for c in columns if c not in synth.columns]
    if missing:
        raise RuntimeError(f"{args.method} output lacks columns {missing}")
    synth = synth.loc[:, columns].reset_index(drop=True)
    if len(synth) != args.n:
        _log(f"warning: {args.method} returned {len(synth)} rows, {args.n} requested")

    args.out.parent.mkdir(parents=True, exist_ok=True)
    synth.to_csv(args.out, index=False)

    rec.update(
        status="ok",
        n_sampled=int(len(synth)),
        fit_seconds=round(fit_s, 3),
        sample_seconds=round(sample_s, 3),
        rows_per_s=round(len(synth) / sample_s, 2) if sample_s > 0 else None,
        peak_rss_mb=round(_peak_rss_mb(), 1),
    )
    rec.setdefault("epochs_completed", None)
    args.record.parent.mkdir(parents=True, exist_ok=True)
    args.record.write_text(json.dumps(rec, indent=2, default=str) + "\n")
    _log(
        f"{args.method}: fit {fit_s:.1f} s, sample {sample_s:.1f} s, "
        f"{len(synth)} rows -> {args.out}; record -> {args.record}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
