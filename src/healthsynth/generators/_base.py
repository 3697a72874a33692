"""The generator contract shared by every generator."""

from __future__ import annotations

import json
import warnings
from abc import ABC, abstractmethod
from collections.abc import Mapping
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import pandas as pd

from healthsynth.data import Schema, write_table
from healthsynth.errors import (
    HealthsynthWarning,
    ModelFolderError,
    NotFittedError,
    ParameterError,
)

__all__ = ["DATA_KINDS", "Generator", "HealthsynthWarning", "as_rules", "surrogate_ids"]

#: What a generator learns from and samples: one table, or patients with their timelines.
DATA_KINDS = ("table", "timelines")


class Generator(ABC):
    """A synthetic-data generator.

    Subclasses take keyword-only settings in ``__init__`` and store them unchanged (no I/O, no
    seeding); ``fit(data, *, ...knowledge)`` validates, learns state into attributes ending in
    ``_`` and returns ``self``; ``sample(n, *, conditions=None, seed=None)`` always returns data
    that match what was learned. ``data_kind`` says what ``data`` is: a ``DataFrame``
    (``"table"``) or a :class:`healthsynth.data.Dataset` of patients and events
    (``"timelines"``, where ``sample`` returns a ``Dataset``).

    Randomness: ``seed`` (an integer) makes ``sample`` return the same data every time;
    ``seed=None`` draws fresh randomness, so two calls differ. The ``seed`` setting governs
    fitting only.

    Knowledge (clinical ``rules``, a ``code_map`` of clinical codes) is given to ``fit`` as
    keyword arguments, kept as ``rules_`` / ``code_map_`` and saved with the model.

    Saving and loading are template methods: :meth:`save` writes what every model folder has
    (``generator.json`` with the settings, ``schema.json``, ``training.json``, the knowledge)
    and calls :meth:`_save_state` for the generator's own files under ``model/``;
    :meth:`load` reads the common parts back and calls :meth:`_load_state`.
    """

    #: Registry name.
    name: ClassVar[str] = ""
    #: ``"table"`` or ``"timelines"`` (see :data:`DATA_KINDS`).
    data_kind: ClassVar[str] = "table"
    #: Whether saved folders hold pickles, which run code when loaded: :meth:`load` refuses
    #: such a folder unless called with ``trust_pickle=True``.
    pickled: ClassVar[bool] = False
    #: Settings :meth:`load` never reads from a folder (whoever wrote the folder could widen
    #: them): the caller gives them again (prompted-llm's endpoint gate, audit log, key).
    call_settings: ClassVar[tuple[str, ...]] = ()
    #: The model-folder format this class writes, and the oldest it still reads.
    format_version: ClassVar[int] = 1
    min_format_version: ClassVar[int] = 1

    schema_: Schema
    training_record_: dict[str, Any]

    @abstractmethod
    def fit(self, data: Any, *args: Any, **kwargs: Any) -> Generator:
        """Learn from ``data`` (keyword arguments: a schema, knowledge); returns ``self``."""

    @abstractmethod
    def sample(
        self,
        n: int,
        *,
        conditions: Mapping[str, Any] | None = None,
        seed: int | None = None,
    ) -> Any:
        """Return ``n`` synthetic rows (patients), optionally with some columns fixed or bounded."""

    # -- model folders ----------------------------------------------------------------------
    def save(self, path: str | Path) -> Path:
        """Write the model folder (see :mod:`healthsynth.generators._folder`); returns it.

        The folder appears only when complete (written under a temporary name, then renamed).
        """
        from healthsynth.generators._folder import atomic_folder, jsonable, write_common

        self._check_fitted()
        path = Path(path)
        with atomic_folder(path) as tmp:
            (tmp / "model").mkdir()
            extra = self._save_state(tmp / "model") or {}
            write_common(
                tmp,
                name=self.name,
                format_version=self.format_version,
                params=self._json_params(),
                schema=self.schema_,
                training=jsonable(self.training_record_),
                extra={"data_kind": self.data_kind, **extra},
            )
            self._save_knowledge(tmp)
        return path

    @classmethod
    def load(cls, path: str | Path, *, trust_pickle: bool = False) -> Generator:
        """Load a model folder written by :meth:`save`.

        Parameters
        ----------
        path
            The model folder.
        trust_pickle
            Allow unpickling the folder's model file. Only generators with ``pickled = True``
            hold one; they raise :class:`~healthsynth.errors.ModelFolderError` without this,
            because unpickling runs whatever code the file carries. Every other generator
            ignores it.
        """
        from healthsynth.generators._folder import open_folder, pickle_refusal, read_json

        folder, meta, schema, params = open_folder(
            path, name=cls.name, format_version=cls.format_version, param_names=cls._param_names()
        )
        if cls.pickled and trust_pickle is not True:
            raise pickle_refusal(folder, generator=cls.name, file="model/")
        version = meta.get("format_version", 0)
        if not isinstance(version, int) or version < cls.min_format_version:
            raise ModelFolderError(
                f"model folder {folder} was written in format version {version} of {cls.name}, "
                f"which this healthsynth no longer reads (it reads {cls.min_format_version} to "
                f"{cls.format_version}); fit the model again"
            )
        self = cls(**cls._params_from_json(params))
        self.schema_ = schema
        self.training_record_ = read_json(folder / "training.json", folder)
        self._load_knowledge(folder)
        self._load_state(folder, meta)
        return self

    def _save_state(self, folder: Path) -> dict[str, Any] | None:
        """Write the generator's own files into ``folder`` (``model/``).

        Returns extra state for ``generator.json`` (JSON), or ``None``.
        """
        raise NotImplementedError(f"{type(self).__name__} does not implement _save_state")

    def _load_state(self, folder: Path, meta: dict[str, Any]) -> None:
        """Read what :meth:`_save_state` wrote (``folder`` is the model folder)."""
        raise NotImplementedError(f"{type(self).__name__} does not implement _load_state")

    def _json_params(self) -> dict[str, Any]:
        """The settings as JSON, as saved in ``generator.json``."""
        from healthsynth.generators._folder import jsonable

        return dict(jsonable(self.get_params()))

    @classmethod
    def _params_from_json(cls, params: dict[str, Any]) -> dict[str, Any]:
        """Constructor settings from the saved ones (a hook for renamed or retired settings)."""
        return params

    def _save_knowledge(self, folder: Path) -> None:
        for attr, file in (("rules_", "rules.json"), ("code_map_", "code_map.json")):
            value = getattr(self, attr, None)
            if value is not None:
                (folder / file).write_text(json.dumps(value.to_dict(), indent=1), encoding="utf-8")

    def _load_knowledge(self, folder: Path) -> None:
        from healthsynth.errors import DataError
        from healthsynth.generators._folder import read_json

        self.rules_: Any = None
        self.code_map_: Any = None
        for attr, file in (("rules_", "rules.json"), ("code_map_", "code_map.json")):
            if not (folder / file).exists():
                continue
            data = read_json(folder / file, folder)
            try:
                if attr == "rules_":
                    from healthsynth.knowledge import RuleSet

                    setattr(self, attr, RuleSet.from_dict(data))
                else:
                    from healthsynth.knowledge import CodeMap

                    setattr(self, attr, CodeMap.from_dict(data))
            except (DataError, ParameterError, KeyError, TypeError, ValueError) as e:
                raise ModelFolderError(
                    f"model folder {folder} is corrupted: {file} is unreadable ({e})"
                ) from None

    # -- shared helpers -------------------------------------------------------------------
    def get_params(self) -> dict[str, Any]:
        """The constructor settings."""
        return {k: getattr(self, k) for k in self._param_names()}

    @classmethod
    def _param_names(cls) -> list[str]:
        import inspect

        sig = inspect.signature(cls.__init__)
        return [p for p in sig.parameters if p != "self"]

    def _check_fitted(self) -> None:
        if not hasattr(self, "schema_"):
            raise NotFittedError(
                f"this {type(self).__name__} is not fitted yet; call fit(data) or load(path) first"
            )

    @staticmethod
    def _check_n(n: Any, unit: str = "rows") -> int:
        if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n <= 0:
            raise ParameterError(f"n must be a positive whole number of {unit}; got {n!r}")
        return int(n)

    @staticmethod
    def _block_seeds(n: int, seed: int | None, block_size: int) -> list[int]:
        """One seed per block of a streamed sample (``seed=None``: fresh randomness)."""
        seeds = np.random.default_rng(seed).integers(0, 2**31 - 1, size=n // block_size + 1)
        return [int(s) for s in seeds]

    def sample_to_file(
        self,
        n: int,
        path: str | Path,
        *,
        conditions: Mapping[str, Any] | None = None,
        seed: int | None = None,
        block_size: int = 50_000,
    ) -> Path:
        """Sample ``n`` rows to a CSV or Parquet file in blocks (memory stays bounded).

        The file appears only when complete (written to a temporary path, then renamed).
        """
        from healthsynth.data import atomic_path
        from healthsynth.data._io import table_format

        if self.data_kind != "table":
            raise ParameterError(
                f"{self.name} samples patients with timelines, which go to a folder of tables; "
                "use sample_to_folder"
            )
        n = self._check_n(n)
        path = Path(path)
        fmt = table_format(path, "output file")
        if n <= block_size:
            return write_table(self.sample(n, conditions=conditions, seed=seed), path)
        seeds = self._block_seeds(n, seed, block_size)
        with atomic_path(path) as tmp:
            writer = None
            done = 0
            for i, block_seed in enumerate(seeds):
                m = min(block_size, n - done)
                if m <= 0:
                    break
                block = self.sample(m, conditions=conditions, seed=block_seed)
                block = self._renumber_ids(block, start=done)
                if fmt == "csv":
                    block.to_csv(tmp, mode="a" if i else "w", header=(i == 0), index=False)
                else:
                    import pyarrow as pa
                    import pyarrow.parquet as pq

                    table = pa.Table.from_pandas(block, preserve_index=False)
                    if writer is None:
                        writer = pq.ParquetWriter(tmp, table.schema)
                    writer.write_table(table.cast(writer.schema))
                done += m
            if writer is not None:
                writer.close()
        return path

    def _renumber_ids(self, block: pd.DataFrame, *, start: int) -> pd.DataFrame:
        """Give a block of a file its place in the file's run of surrogate identifiers."""
        for c in self.schema_.columns:
            if c.kind == "identifier" and c.name in block:
                block[c.name] = surrogate_ids(c.dtype, start, len(block))
        return block


class _NoProgress:
    def __enter__(self) -> _NoProgress:
        return self

    def __exit__(self, *exc: object) -> None:
        return None


def progress_bar(verbose: bool) -> Any:
    """A rich progress display for training (a do-nothing context when not ``verbose``)."""
    if not verbose:
        return _NoProgress()
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    return Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        transient=False,
    )


def warn(message: str, *, stacklevel: int = 3) -> None:
    """Issue a :class:`HealthsynthWarning` (``stacklevel`` 3: at the caller's caller)."""
    warnings.warn(message, HealthsynthWarning, stacklevel=stacklevel)


def as_rules(rules: Any, schema: Schema) -> Any:
    """A checked RuleSet from a RuleSet, a list of rules or a YAML path (None: no rules)."""
    if rules is None:
        return None
    from healthsynth.knowledge import RuleSet, load_rules

    if isinstance(rules, (str, Path)):
        rules = load_rules(rules)
    elif not isinstance(rules, RuleSet):
        rules = RuleSet(rules)
    if len(rules) == 0:
        return None
    rules.check(schema)
    return rules


def surrogate_ids(dtype: str, start: int, n: int) -> np.ndarray:
    """Identifiers ``start + 1 … start + n`` for synthetic rows (numbers, or ``syn-…`` strings)."""
    if dtype.startswith(("int", "uint", "Int", "float")):
        return np.arange(start + 1, start + n + 1)
    return np.array([f"syn-{i:08d}" for i in range(start + 1, start + n + 1)], dtype=object)
