"""Benchmark configuration files: reading and checking them.

A configuration is a YAML mapping (the full format is in ``docs/benchmark.md``)::

    name: default
    experiment: generators          # or class-imbalance, health-equity
    datasets:
      - {name: colon, source: survival/colon, target: status, sensitive: [sex]}
      - {name: mine, path: data/mine.csv, holdout: 0.2, target: outcome}
      - {name: pima, source: MASS/Pima.tr, holdout: pima_test.csv, target: type}
    generators: [tabular-lm, {name: ctgan, params: {epochs: 50}}, marginals]
    train_sizes: [100, 300, all]
    seeds: [0, 1]
    time_budget_per_cell_s: 900

Every problem is found before any cell runs, and reported in one sentence naming the file, the
entry and the key (with the line number for YAML syntax errors). Loading the datasets a
configuration names is in :mod:`healthsynth.benchmark._datasets` (``load_frame`` and
``load_holdout`` stay importable from here).
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import asdict, dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

from healthsynth.benchmark._datasets import load_frame, load_holdout
from healthsynth.data._io import read_yaml
from healthsynth.data._names import is_plain_name
from healthsynth.errors import DataFileError, ParameterError

__all__ = [
    "BUILTIN_METHODS",
    "EXPERIMENTS",
    "BenchmarkConfig",
    "DatasetSpec",
    "MethodSpec",
    "load_config",
    "load_frame",
    "load_holdout",
    "packaged_configs",
]

#: what a configuration can ask for
EXPERIMENTS = ("generators", "class-imbalance", "health-equity")

#: methods of the augmentation experiments that are not generators, by experiment
BUILTIN_METHODS: dict[str, dict[str, str]] = {
    "generators": {},
    "class-imbalance": {
        "none": "the classifier trained on the real rows only",
        "class-weights": "the classifier trained on the real rows with balanced class weights",
    },
    "health-equity": {
        "none": "the classifier trained on the real rows only",
        "reweighting": "the real rows weighted so every subgroup has the same total weight",
    },
}

_TOP_KEYS = (
    "name",
    "description",
    "experiment",
    "datasets",
    "generators",
    "train_sizes",
    "seeds",
    "time_budget_per_cell_s",
    "synthetic_rows",
    "metrics",
    "workers",
)
_DATASET_KEYS = (
    "name",
    "source",
    "path",
    "holdout",
    "target",
    "sensitive",
    "columns",
    "drop",
    "max_rows",
    "rules",
)
_METHOD_KEYS = ("name", "generator", "params")
_LABEL = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.+-]*")


def _label_ok(label: str) -> bool:
    """Whether ``label`` can name a folder of the results (dataset and generator labels can)."""
    return bool(_LABEL.fullmatch(label)) and is_plain_name(label)


@dataclass(frozen=True)
class DatasetSpec:
    """One dataset of a benchmark: where its rows come from and the roles of its columns.

    ``holdout`` is the share of rows each seed holds out, or the path of a fixed holdout file
    (an external test set, used unchanged: every row of the dataset is then a training row).
    """

    name: str
    source: str | None = None
    path: str | None = None
    holdout: float | str = 0.2
    target: str | None = None
    sensitive: tuple[str, ...] = ()
    columns: tuple[str, ...] | None = None
    drop: tuple[str, ...] = ()
    max_rows: int | None = None
    rules: str | None = None


@dataclass(frozen=True)
class MethodSpec:
    """One generator (or built-in augmentation method) with its settings.

    ``name`` labels it in the results (so one generator can appear with two settings);
    ``generator`` is its registry name, or a built-in method name.
    """

    name: str
    generator: str
    params: dict[str, Any] = field(default_factory=dict)

    @property
    def builtin(self) -> bool:
        """Whether this is a built-in method rather than a registered generator."""
        return any(self.generator in m for m in BUILTIN_METHODS.values())


@dataclass(frozen=True)
class BenchmarkConfig:
    """A checked benchmark configuration."""

    name: str
    experiment: str
    datasets: tuple[DatasetSpec, ...]
    methods: tuple[MethodSpec, ...]
    train_sizes: tuple[int | str, ...]
    seeds: tuple[int, ...]
    time_budget_per_cell_s: float = 900.0
    synthetic_rows: int | str = "same"
    metrics: tuple[str, ...] | None = None
    workers: int = 1
    description: str = ""
    source: str = ""

    def to_dict(self) -> dict[str, Any]:
        """Plain data (for ``config.json`` in the output folder)."""
        return json.loads(json.dumps(asdict(self), default=str))

    def cell_hash(self, dataset: DatasetSpec, method: MethodSpec, size: Any, seed: int) -> str:
        """A fingerprint of everything that decides one cell's result (for resuming)."""
        key = {
            "experiment": self.experiment,
            "dataset": asdict(dataset),
            "method": asdict(method),
            "size": size,
            "seed": seed,
            "budget": self.time_budget_per_cell_s,
            "synthetic_rows": self.synthetic_rows,
            "metrics": self.metrics,
        }
        text = json.dumps(key, sort_keys=True, default=str)
        return hashlib.sha256(text.encode()).hexdigest()[:16]


def packaged_configs() -> dict[str, Path]:
    """The configurations shipped with healthsynth, by name (``default``, ``health-equity`` ...)."""
    root = resources.files("healthsynth.benchmark") / "configs"
    return {
        p.name.removesuffix(".yaml"): Path(str(p))
        for p in root.iterdir()
        if p.name.endswith(".yaml")
    }


def load_config(path: str | Path) -> BenchmarkConfig:
    """Read and check a benchmark configuration (a file, or the name of a packaged one)."""
    p = Path(path)
    if not p.is_file():
        # a packaged name is meant even when a folder of that name (e.g. the output of an
        # earlier run of it) is in the current directory
        shipped = packaged_configs()
        if str(path) in shipped:
            p = shipped[str(path)]
        elif not p.exists():
            raise DataFileError(
                f"benchmark config '{path}' does not exist; give a YAML file or one of the "
                f"packaged configs: {', '.join(sorted(shipped))}"
            )
    if not p.is_file():
        raise DataFileError(f"benchmark config '{p}' is not a file")
    data = read_yaml(p, what="benchmark config")
    return config_from_data(data, source=p)


def _fail(source: Path, message: str) -> DataFileError:
    return DataFileError(f"benchmark config '{source}': {message}")


def config_from_data(data: Any, *, source: Path) -> BenchmarkConfig:
    """Check parsed YAML and build a :class:`BenchmarkConfig` (paths relative to ``source``)."""
    if not isinstance(data, dict):
        raise _fail(source, "must be a mapping with 'datasets', 'generators' and other keys")
    unknown = [str(k) for k in data if k not in _TOP_KEYS]
    if unknown:
        raise _fail(
            source, f"unknown key '{unknown[0]}'; the keys allowed are {', '.join(_TOP_KEYS)}"
        )
    experiment = data.get("experiment", "generators")
    if experiment not in EXPERIMENTS:
        raise _fail(
            source,
            f"experiment '{experiment}' is not known; choose one of {', '.join(EXPERIMENTS)}",
        )
    datasets = tuple(_dataset(d, i, source) for i, d in enumerate(_list(data, "datasets", source)))
    names = [d.name for d in datasets]
    dup = sorted({n for n in names if names.count(n) > 1})
    if dup:
        raise _fail(source, f"dataset name '{dup[0]}' is used twice; give each a unique name")
    methods = tuple(
        _method(m, i, source, experiment) for i, m in enumerate(_list(data, "generators", source))
    )
    labels = [m.name for m in methods]
    dup = sorted({n for n in labels if labels.count(n) > 1})
    if dup:
        raise _fail(
            source,
            f"generator '{dup[0]}' is listed twice; give the second one its own 'name' "
            "(e.g. {name: ctgan-long, generator: ctgan, params: {epochs: 300}})",
        )
    sizes = tuple(_size(s, source) for s in data.get("train_sizes", ["all"]) or ["all"])
    seeds_raw = data.get("seeds", [0])
    if not isinstance(seeds_raw, list) or not seeds_raw:
        raise _fail(source, "'seeds' must be a non-empty list of whole numbers, e.g. [0, 1, 2]")
    seeds = tuple(_whole(s, "seeds", source, minimum=0) for s in seeds_raw)
    budget = data.get("time_budget_per_cell_s", 900)
    if isinstance(budget, bool) or not isinstance(budget, (int, float)) or budget <= 0:
        raise _fail(source, f"'time_budget_per_cell_s' must be a positive number; got {budget!r}")
    syn = data.get("synthetic_rows", "same")
    if syn != "same":
        syn = _whole(syn, "synthetic_rows", source, minimum=1, hint="or 'same'")
    metrics = data.get("metrics")
    if metrics is not None:
        from healthsynth.evaluate import registry

        if not isinstance(metrics, list) or not metrics:
            raise _fail(source, "'metrics' must be a non-empty list of metric names")
        try:
            metrics = tuple(registry.resolve(metrics, kind="table"))
        except ParameterError as e:
            raise _fail(source, str(e)) from None
    workers = _whole(data.get("workers", 1), "workers", source, minimum=1)
    name = str(data.get("name") or source.stem)
    return BenchmarkConfig(
        name=name,
        experiment=experiment,
        datasets=datasets,
        methods=methods,
        train_sizes=sizes,
        seeds=seeds,
        time_budget_per_cell_s=float(budget),
        synthetic_rows=syn,
        metrics=metrics,
        workers=workers,
        description=str(data.get("description") or ""),
        source=str(source),
    )


def _list(data: dict[str, Any], key: str, source: Path) -> list[Any]:
    value = data.get(key)
    if not isinstance(value, list) or not value:
        raise _fail(source, f"'{key}' must be a non-empty list")
    return value


def _whole(v: Any, key: str, source: Path, *, minimum: int, hint: str = "") -> int:
    if isinstance(v, bool) or not isinstance(v, int) or v < minimum:
        extra = f" {hint}" if hint else ""
        raise _fail(source, f"'{key}' must be a whole number >= {minimum}{extra}; got {v!r}")
    return v


def _size(v: Any, source: Path) -> int | str:
    if v == "all":
        return "all"
    return _whole(v, "train_sizes", source, minimum=2, hint="or 'all'")


def _known_keys(entry: dict[Any, Any], allowed: tuple[str, ...], where: str, source: Path) -> None:
    """Refuse the first key of a dataset or generator entry that is not in ``allowed``."""
    unknown = [str(k) for k in entry if k not in allowed]
    if unknown:
        raise _fail(
            source, f"{where} has unknown key '{unknown[0]}'; allowed: {', '.join(allowed)}"
        )


def _relative_to(source: Path, value: Any) -> str:
    """A path from the config, made absolute from the config file's folder."""
    p = Path(str(value))
    return str(p if p.is_absolute() else (source.parent / p).resolve())


def _dataset(d: Any, i: int, source: Path) -> DatasetSpec:
    from healthsynth.data import HEALTH_DATASETS

    where = f"dataset {i + 1}"
    if isinstance(d, str):
        d = {"name": d}
    if not isinstance(d, dict):
        raise _fail(source, f"{where} must be a mapping such as {{name: colon, source: ...}}")
    _known_keys(d, _DATASET_KEYS, where, source)
    name = d.get("name")
    if not isinstance(name, str) or not name:
        raise _fail(source, f"{where} needs a 'name'")
    where = f"dataset '{name}'"
    src, path = d.get("source"), d.get("path")
    if src is None and path is None:
        if name in HEALTH_DATASETS:
            src = name
            name = name.split("/")[-1]
        else:
            raise _fail(
                source,
                f"{where} is not a known dataset and has no 'path'; known datasets: "
                f"{', '.join(HEALTH_DATASETS)} (or give 'path: FILE.csv')",
            )
    if src is not None and path is not None:
        raise _fail(source, f"{where} has both 'source' and 'path'; keep one")
    if not _label_ok(name.replace("/", "-")):
        raise _fail(
            source,
            f"{where}: the name may hold only letters, digits and . _ + - (no '..', not a "
            "device name such as CON or NUL, at most 100 characters)",
        )
    if path is not None:
        path = _relative_to(source, path)
    holdout = d.get("holdout", 0.2)
    if isinstance(holdout, str):
        holdout = _relative_to(source, holdout)
    elif isinstance(holdout, bool) or not isinstance(holdout, (int, float)):
        raise _fail(
            source,
            f"{where}: 'holdout' must be a fraction between 0 and 1 or the path of a holdout file",
        )
    elif not 0 < holdout < 1:
        raise _fail(source, f"{where}: 'holdout' must be between 0 and 1; got {holdout}")
    sensitive = d.get("sensitive") or []
    if isinstance(sensitive, str):
        sensitive = [sensitive]
    columns = d.get("columns")
    drop = d.get("drop") or []
    for key, v in (("sensitive", sensitive), ("columns", columns or []), ("drop", drop)):
        if not isinstance(v, list) or not all(isinstance(x, str) for x in v):
            raise _fail(source, f"{where}: '{key}' must be a list of column names")
    max_rows = d.get("max_rows")
    if max_rows is not None:
        max_rows = _whole(max_rows, f"{name}.max_rows", source, minimum=10)
    rules = d.get("rules")
    if rules is not None:
        rules = _relative_to(source, rules)
    target = d.get("target")
    if target is not None and not isinstance(target, str):
        raise _fail(source, f"{where}: 'target' must be a column name")
    return DatasetSpec(
        name=name.replace("/", "-"),
        source=src,
        path=path,
        holdout=holdout if isinstance(holdout, str) else float(holdout),
        target=target,
        sensitive=tuple(sensitive),
        columns=tuple(columns) if columns else None,
        drop=tuple(drop),
        max_rows=max_rows,
        rules=rules,
    )


def _method(m: Any, i: int, source: Path, experiment: str) -> MethodSpec:
    from healthsynth.generators import registry

    if isinstance(m, str):
        m = {"name": m}
    if not isinstance(m, dict):
        raise _fail(source, f"generator {i + 1} must be a name or a mapping with 'name'")
    _known_keys(m, _METHOD_KEYS, f"generator {i + 1}", source)
    name = m.get("name")
    if not isinstance(name, str) or not _label_ok(name):
        raise _fail(
            source,
            f"generator {i + 1} needs a 'name' of letters, digits and . _ + - (no '..', not a "
            "device name such as CON or NUL, at most 100 characters)",
        )
    gen = m.get("generator", name)
    builtin = BUILTIN_METHODS[experiment]
    if gen not in builtin and gen not in registry.names():
        valid = registry.names() + list(builtin)
        raise _fail(source, f"generator '{gen}' is not known; known generators: {', '.join(valid)}")
    params = m.get("params") or {}
    if not isinstance(params, dict):
        raise _fail(source, f"generator '{name}': 'params' must be a mapping of settings")
    if gen not in builtin:
        import inspect

        cls = registry.get(gen)
        accepted = [p for p in inspect.signature(cls.__init__).parameters if p != "self"]
        bad = [k for k in params if k not in accepted]
        if bad:
            raise _fail(
                source,
                f"generator '{name}' has no setting '{bad[0]}'; its settings: "
                f"{', '.join(accepted)}",
            )
    elif params:
        raise _fail(source, f"'{gen}' is a built-in method and takes no 'params'")
    return MethodSpec(name=name, generator=gen, params=dict(params))
