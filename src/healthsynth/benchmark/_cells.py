"""One benchmark cell: a generator (or method) on one dataset, training size and seed.

A cell splits the dataset (seeded by the cell's seed), takes its training rows (the first ``n``
of a seeded order, so smaller training sets are subsets of larger ones), fits, samples and
evaluates, and writes into its own folder:

* ``cell.json`` — status (``ok``, ``failed`` or ``timeout``), error, sizes, seconds, memory;
  written last, so a folder without it is an unfinished cell and runs again on resume;
* ``records.json`` — the metric records;
* ``synthetic.csv`` — the generated rows (generator experiments);
* ``log.txt`` — everything the cell's process printed; ``error.txt`` — the traceback.
"""

from __future__ import annotations

import json
import os
import time
import traceback
import warnings
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from healthsynth.benchmark._config import (
    BenchmarkConfig,
    DatasetSpec,
    MethodSpec,
    load_frame,
    load_holdout,
)
from healthsynth.data import Schema, infer_schema, train_holdout_split

__all__ = ["Cell", "plan", "run_cell", "training_rows", "write_cell"]


@dataclass(frozen=True)
class Cell:
    """Coordinates of one cell."""

    dataset: DatasetSpec
    method: MethodSpec
    size: int | str
    seed: int

    @property
    def folder(self) -> Path:
        """The cell's folder, relative to the benchmark's ``cells/``."""
        return Path(self.dataset.name) / self.method.name / f"n{self.size}-s{self.seed}"

    def label(self) -> str:
        """Short human-readable name."""
        return f"{self.dataset.name} · {self.method.name} · n={self.size} · seed {self.seed}"


def plan(config: BenchmarkConfig, training_rows: dict[str, int] | None = None) -> list[Cell]:
    """Every cell of ``config``, cheapest sizes first (so a cut-short run has whole curves).

    With ``training_rows`` (each dataset's number of training rows, :func:`training_rows`), a
    size that would be capped to the same rows as another planned size of that dataset is
    left out: with ``all`` among the sizes, every size above the dataset's rows; without it,
    all but the smallest such size. Those cells would fit on exactly the same rows again.
    """
    sizes = {
        d.name: _kept_sizes(config.train_sizes, (training_rows or {}).get(d.name))
        for d in config.datasets
    }
    return [
        Cell(d, m, size, seed)
        for size in config.train_sizes
        for seed in config.seeds
        for d in config.datasets
        if size in sizes[d.name]
        for m in config.methods
    ]


def _kept_sizes(sizes: list[int | str], n_train: int | None) -> list[int | str]:
    if n_train is None:
        return list(sizes)
    capped = [s for s in sizes if s != "all" and int(s) > n_train]
    drop = set(capped) if "all" in sizes else set(capped[1:])
    return [s for s in sizes if s not in drop]


def training_rows(config: BenchmarkConfig) -> dict[str, int]:
    """Each dataset's number of training rows (seed 0's split), loading it if needed."""
    return {d.name: len(training_pool(d, 0, config.source)[0]) for d in config.datasets}


#: frames loaded once per process (a forked worker inherits the parent's)
_FRAMES: dict[DatasetSpec, pd.DataFrame] = {}
_HOLDOUTS: dict[DatasetSpec, pd.DataFrame | None] = {}
_SCHEMAS: dict[DatasetSpec, Schema] = {}


def frame_and_schema(spec: DatasetSpec, source: str = "") -> tuple[pd.DataFrame, Schema]:
    """The dataset's rows and its schema (inferred from all rows, with the roles set).

    With a fixed holdout file, its rows count among "all rows" for the schema.
    """
    if spec not in _FRAMES:
        df = load_frame(spec, config_source=source)
        hold = load_holdout(spec, df, config_source=source)
        _FRAMES[spec], _HOLDOUTS[spec] = df, hold
        every = df if hold is None else pd.concat([df, hold], ignore_index=True)
        _SCHEMAS[spec] = infer_schema(
            every,
            target=spec.target,
            sensitive=list(spec.sensitive),
            source=f"dataset '{spec.name}'",
        )
    return _FRAMES[spec], _SCHEMAS[spec]


def training_pool(
    spec: DatasetSpec, seed: int, source: str = ""
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The rows training sizes draw from and the holdout rows, for one seed.

    A holdout share splits the dataset by the seed; a holdout file is used unchanged and every
    row of the dataset is a training row.
    """
    df, _ = frame_and_schema(spec, source)
    hold = _HOLDOUTS[spec]
    if hold is None:
        return train_holdout_split(df, holdout=float(spec.holdout), seed=seed)
    return df, hold


def split_for(
    spec: DatasetSpec, size: int | str, seed: int, source: str = ""
) -> tuple[pd.DataFrame, pd.DataFrame, Schema, list[str]]:
    """Training rows (``size`` of them, capped), holdout rows, schema, and warnings."""
    _, schema = frame_and_schema(spec, source)
    train_all, holdout = training_pool(spec, seed, source)
    notes = []
    n = len(train_all) if size == "all" else int(size)
    if n > len(train_all):
        notes.append(
            f"training size {size} is larger than the {len(train_all)} training rows of "
            f"'{spec.name}'; capped at {len(train_all)}"
        )
        n = len(train_all)
    order = np.random.default_rng(seed + 7919).permutation(len(train_all))[:n]
    return train_all.iloc[np.sort(order)].reset_index(drop=True), holdout, schema, notes


def cell_identity(config: BenchmarkConfig, cell: Cell) -> dict[str, Any]:
    """The fields that name a cell in its ``cell.json`` (with the settings' fingerprint)."""
    return {
        "dataset": cell.dataset.name,
        "method": cell.method.name,
        "generator": cell.method.generator,
        "train_size": cell.size,
        "seed": cell.seed,
        "hash": config.cell_hash(cell.dataset, cell.method, cell.size, cell.seed),
    }


def write_cell(folder: Path, name: str, payload: Any) -> None:
    """Write one JSON file of a cell atomically."""
    from healthsynth.data._io import atomic_write_text

    folder.mkdir(parents=True, exist_ok=True)
    atomic_write_text(folder / name, json.dumps(payload, indent=1, default=str))


def _limit_threads(threads: int) -> None:
    os.environ["OMP_NUM_THREADS"] = str(threads)
    try:
        from threadpoolctl import threadpool_limits

        threadpool_limits(threads)
    except Exception:  # noqa: BLE001 - best effort
        pass
    try:
        import torch

        torch.set_num_threads(threads)
    except Exception:  # noqa: BLE001
        pass


def _redirect_output(path: Path) -> None:
    """Send this process's stdout and stderr (file descriptors too) to ``path``."""
    import sys

    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    sys.stdout.flush()
    sys.stderr.flush()
    os.dup2(fd, 1)
    os.dup2(fd, 2)
    os.close(fd)
    sys.stdout = open(1, "w", closefd=False, buffering=1)  # noqa: SIM115
    sys.stderr = open(2, "w", closefd=False, buffering=1)  # noqa: SIM115


def run_cell(
    config: BenchmarkConfig, cell: Cell, root: Path, *, threads: int = 1, redirect: bool = True
) -> dict[str, Any]:
    """Run ``cell`` and write its folder under ``root``; never raises for a failing cell."""
    folder = root / cell.folder
    folder.mkdir(parents=True, exist_ok=True)
    if redirect:
        _redirect_output(folder / "log.txt")
    _limit_threads(threads)
    info = cell_identity(config, cell)
    info.update(started=datetime.now(timezone.utc).isoformat(timespec="seconds"), status="running")
    started = time.perf_counter()
    records: list[dict[str, Any]] = []
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        for noisy in (DeprecationWarning, FutureWarning, PendingDeprecationWarning):
            warnings.simplefilter("ignore", noisy)
        try:
            train, holdout, schema, notes = split_for(
                cell.dataset, cell.size, cell.seed, config.source
            )
            info.update(train_rows=len(train), holdout_rows=len(holdout), notes=notes)
            if config.experiment == "generators":
                records = _generator_cell(config, cell, train, holdout, schema, folder, info)
            else:
                records = _experiment_cell(config, cell, train, holdout, schema, info)
            info["status"] = "ok"
        except Exception as e:  # noqa: BLE001 - a failing cell is recorded, never fatal
            info["status"] = "failed"
            info["error"] = f"{type(e).__name__}: {e}".strip()
            (folder / "error.txt").write_text(traceback.format_exc(), encoding="utf-8")
    seen: list[str] = []
    for w in caught:
        text = f"{w.category.__name__}: {w.message}"
        if text not in seen:
            seen.append(text)
    info["warnings"] = seen[:20]
    info["seconds"] = round(time.perf_counter() - started, 3)
    info["finished"] = datetime.now(timezone.utc).isoformat(timespec="seconds")
    from healthsynth.generators._folder import peak_rss_mb

    info["peak_rss_mb"] = peak_rss_mb()
    write_cell(folder, "records.json", records)
    write_cell(folder, "cell.json", info)
    return info


def _generator(cell: Cell, config: BenchmarkConfig) -> Any:
    import inspect

    from healthsynth.generators import registry

    cls = registry.get(cell.method.generator)
    accepted = inspect.signature(cls.__init__).parameters
    params = dict(cell.method.params)
    if "seed" in accepted and "seed" not in params:
        params["seed"] = cell.seed
    if "max_time" in accepted and "max_time" not in params:
        # leave time for sampling and evaluation inside the cell's budget
        params["max_time"] = 0.5 * config.time_budget_per_cell_s
    return cls(**params)


def _generator_cell(
    config: BenchmarkConfig,
    cell: Cell,
    train: pd.DataFrame,
    holdout: pd.DataFrame,
    schema: Schema,
    folder: Path,
    info: dict[str, Any],
) -> list[dict[str, Any]]:
    from healthsynth.data import write_table
    from healthsynth.evaluate import evaluate
    from healthsynth.generators._folder import peak_rss_mb

    gen = _generator(cell, config)
    t0 = time.perf_counter()
    gen.fit(train, schema=schema)
    info["fit_seconds"] = round(time.perf_counter() - t0, 3)
    n = len(train) if config.synthetic_rows == "same" else int(config.synthetic_rows)
    t0 = time.perf_counter()
    synthetic = gen.sample(n, seed=cell.seed)
    took = time.perf_counter() - t0
    info.update(sample_seconds=round(took, 3), synthetic_rows=len(synthetic))
    write_table(synthetic, folder / "synthetic.csv")
    rules = None
    if cell.dataset.rules:
        from healthsynth.knowledge import load_rules

        rules = load_rules(cell.dataset.rules)
    sampling = {
        "n": n,
        "seconds": round(took, 3),
        "rows_per_second": round(n / max(took, 1e-9), 1),
        "peak_rss_mb": peak_rss_mb(),
    }
    t0 = time.perf_counter()
    result = evaluate(
        real=train,
        synthetic=synthetic,
        holdout=holdout,
        schema=schema,
        rules=rules,
        training=getattr(gen, "training_record_", None),
        sampling=sampling,
        metrics=list(config.metrics) if config.metrics else None,
        seed=cell.seed,
    )
    info["evaluate_seconds"] = round(time.perf_counter() - t0, 3)
    info["evaluate_warnings"] = result["meta"].get("warnings", [])
    return list(result["records"])


def _experiment_cell(
    config: BenchmarkConfig,
    cell: Cell,
    train: pd.DataFrame,
    holdout: pd.DataFrame,
    schema: Schema,
    info: dict[str, Any],
) -> list[dict[str, Any]]:
    from healthsynth.benchmark._experiments import augment_rows, experiment_records

    extra = None
    if not cell.method.builtin:
        plan_rows = augment_rows(config.experiment, train, schema)
        gen = _generator(cell, config)
        t0 = time.perf_counter()
        gen.fit(train, schema=schema)
        info["fit_seconds"] = round(time.perf_counter() - t0, 3)
        t0 = time.perf_counter()
        parts = [
            gen.sample(k, conditions=cond, seed=cell.seed + 1000 * i)
            for i, (cond, k) in enumerate(plan_rows)
            if k > 0
        ]
        info["sample_seconds"] = round(time.perf_counter() - t0, 3)
        info["augmented"] = [
            {"conditions": {c: str(v) for c, v in cond.items()}, "rows": k} for cond, k in plan_rows
        ]
        extra = pd.concat(parts, ignore_index=True) if parts else None
        if extra is not None:
            # the classifier needs the real data's dtypes for the added rows too
            for c in train.columns:
                if c in extra.columns and train[c].dtype != extra[c].dtype:
                    try:
                        extra[c] = extra[c].astype(train[c].dtype)
                    except (TypeError, ValueError):
                        pass
    t0 = time.perf_counter()
    records = experiment_records(
        config.experiment,
        cell.method.generator,
        train=train,
        holdout=holdout,
        schema=schema,
        seed=cell.seed,
        extra=extra,
    )
    info["evaluate_seconds"] = round(time.perf_counter() - t0, 3)
    return records
