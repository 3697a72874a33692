"""Benchmarks: generators × datasets × training sizes × seeds, scored with the full portfolio.

Also the augmentation experiments (class imbalance, health equity). See ``docs/benchmark.md``.
"""

from healthsynth.benchmark._cells import plan, training_rows
from healthsynth.benchmark._config import (
    EXPERIMENTS,
    BenchmarkConfig,
    DatasetSpec,
    MethodSpec,
    load_config,
    packaged_configs,
)
from healthsynth.benchmark._runner import BenchmarkRun, run_benchmark
from healthsynth.benchmark._summary import collect, frontier, rank_table, write_summary

__all__ = [
    "EXPERIMENTS",
    "BenchmarkConfig",
    "BenchmarkRun",
    "DatasetSpec",
    "MethodSpec",
    "collect",
    "frontier",
    "load_config",
    "packaged_configs",
    "plan",
    "rank_table",
    "run_benchmark",
    "training_rows",
    "write_summary",
]
