"""What the generators that wrap an outside library share.

* :func:`require` imports the library when it is first needed and turns a missing one into a
  :class:`~healthsynth.errors.MissingExtraError` that names the extra to install.
* :class:`TableEncoder` (:mod:`._encoder`, re-exported here) turns a table into the
  all-numeric form these libraries accept, and generated rows back into values that are valid
  for the schema.
* :func:`rejection_sample` draws batches until enough rows satisfy the conditions, and says so
  in one sentence when the conditions are too rare to meet that way.
* :class:`LibraryGenerator` is the fit / sample / save / load skeleton of those generators.
"""

from __future__ import annotations

import contextlib
import importlib
import json
import logging
import time
from collections.abc import Callable, Iterator, Mapping
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from types import ModuleType
from typing import Any, ClassVar

import numpy as np
import pandas as pd

from healthsynth.data import Schema, infer_schema
from healthsynth.errors import (
    ConditionError,
    DataError,
    HealthsynthError,
    MissingExtraError,
    ModelFolderError,
    ParameterError,
)
from healthsynth.generators._base import Generator, surrogate_ids, warn
from healthsynth.generators._conditions import Condition, resolve_conditions
from healthsynth.generators._encoder import TableEncoder, condition_mask
from healthsynth.generators._folder import (
    atomic_folder,
    open_folder,
    peak_rss_mb,
    pickle_refusal,
    read_json,
    runtime_info,
    write_common,
)

__all__ = [
    "LibraryGenerator",
    "TableEncoder",
    "condition_mask",
    "preserved_global_rng",
    "quiet_logger",
    "rejection_sample",
    "require",
]

#: Below this share of accepted rows, rejection sampling gives up.
MIN_ACCEPTANCE = 1e-3
#: Rows drawn before a low acceptance rate counts as hopeless.
_PROBE_ROWS = 20_000
_MAX_BATCH = 100_000


# -- importing ---------------------------------------------------------------------------------
def require(module: str, *, package: str, extra: str, what: str) -> ModuleType:
    """Import ``module``, or raise :class:`MissingExtraError` naming ``package`` and ``extra``.

    The root logger is left as it was: some libraries (pgmpy) call ``logging.basicConfig`` when
    imported, which would make every library's INFO messages appear in the user's program.
    """
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    try:
        return importlib.import_module(module)
    except ImportError as e:
        raise MissingExtraError(package, extra, what) from e
    finally:
        if root.handlers != handlers or root.level != level:
            root.handlers[:] = handlers
            root.setLevel(level)


def library_version(package: str) -> str | None:
    """Installed version of ``package`` (``None`` when it is not installed)."""
    try:
        return version(package)
    except PackageNotFoundError:
        return None


@contextlib.contextmanager
def quiet_logger(name: str, level: int = logging.ERROR) -> Iterator[None]:
    """Raise the level of library logger ``name`` for the duration, then restore it."""
    logger = logging.getLogger(name)
    old = logger.level
    logger.setLevel(level)
    try:
        yield
    finally:
        logger.setLevel(old)


@contextlib.contextmanager
def preserved_global_rng() -> Iterator[None]:
    """Restore NumPy's global random state afterwards (for libraries that seed it)."""
    state = np.random.get_state()
    try:
        yield
    finally:
        np.random.set_state(state)


def rejection_sample(
    draw: Callable[[int, int], pd.DataFrame],
    n: int,
    conds: Mapping[str, Condition],
    schema: Schema,
    *,
    seed: int | None,
    what: str,
) -> pd.DataFrame:
    """Draw ``n`` rows that satisfy ``conds`` from ``draw(m, seed)`` in batches.

    Without conditions this is normally one call ``draw(n, seed)``. The batch seeds come from
    ``seed``, so a seeded call reproduces exactly. Raises :class:`ConditionError` when fewer
    than one row in a thousand is accepted after enough tries.
    """
    rng = np.random.default_rng(seed)
    parts: list[pd.DataFrame] = []
    got = drawn = 0
    batch = max(n, 256) if conds else n
    while got < n:
        rows = draw(batch, _next_seed(rng)).reset_index(drop=True)
        if len(rows) == 0:
            raise RuntimeError(f"the '{what}' generator returned no rows for {batch} asked")
        keep = np.ones(len(rows), bool)
        for name, cond in conds.items():
            keep &= condition_mask(rows[name], cond, schema[name])
        parts.append(rows[keep])
        drawn += len(rows)
        got += int(keep.sum())
        if got >= n:
            break
        rate = got / drawn
        if drawn >= _PROBE_ROWS and rate < MIN_ACCEPTANCE:
            described = " and ".join(c.describe() for c in conds.values())
            raise ConditionError(
                f"only {got} of {drawn} rows drawn from the '{what}' generator satisfy "
                f"{described}, too rare to meet by rejection sampling; loosen the conditions"
            )
        want = (n - got) / max(rate, MIN_ACCEPTANCE) * 1.2 if got else batch * 4
        batch = int(min(_MAX_BATCH, max(256, want)))
    return pd.concat(parts, ignore_index=True).iloc[:n].reset_index(drop=True)


def _next_seed(rng: np.random.Generator) -> int:
    return int(rng.integers(0, 2**31 - 1))


# -- the shared generator skeleton ---------------------------------------------------------------
class LibraryGenerator(Generator):
    """Fit / sample / save / load shared by the generators that wrap an outside library.

    A subclass names the library (``_module``, ``_package``, ``_extra``), declares its settings
    in ``_params`` (name -> (what it must be, check)) and implements :meth:`_fit_library`,
    :meth:`_draw`, :meth:`_save_model` and :meth:`_load_model`. One whose library saves a
    pickle sets ``pickled = True`` and names the file in ``_pickle_file``.
    """

    _module: ClassVar[str] = ""
    #: The pickle under ``model/`` that :meth:`_save_model` writes (``pickled`` generators).
    _pickle_file: ClassVar[str] = ""
    _package: ClassVar[str] = ""
    _extra: ClassVar[str] = ""
    _params: ClassVar[dict[str, tuple[str, Callable[[Any], bool]]]] = {}
    _format_version: ClassVar[int] = 1

    encoder_: TableEncoder
    training_record_: dict[str, Any]

    # -- hooks ----------------------------------------------------------------------------------
    def _fit_library(self, lib: ModuleType, frame: pd.DataFrame, data: pd.DataFrame) -> None:
        """Fit the library model on the encoded ``frame`` (``data`` is the original table).

        ``self.encoder_`` (and through it the schema) is set when this runs, also on load.
        """
        raise NotImplementedError

    def _draw(
        self, lib: ModuleType, m: int, seed: int, conds: Mapping[str, Condition]
    ) -> pd.DataFrame:
        """Return ``m`` decoded rows; ``conds`` may be used for native conditioning."""
        raise NotImplementedError

    def _save_model(self, folder: Path) -> None:
        """Write the library model into ``folder`` (the model folder's ``model/``)."""
        raise NotImplementedError

    def _load_model(self, lib: ModuleType, folder: Path) -> None:
        """Read what :meth:`_save_model` wrote."""
        raise NotImplementedError

    def _extra_record(self) -> dict[str, Any]:
        """More fields for the training record."""
        return {}

    # -- contract -------------------------------------------------------------------------------
    def _import(self) -> ModuleType:
        return require(
            self._module,
            package=self._package,
            extra=self._extra,
            what=f"the '{self.name}' generator",
        )

    def _validate_params(self) -> None:
        for name, (must, ok) in self._params.items():
            v = getattr(self, name)
            if not ok(v):
                raise ParameterError(f"parameter '{name}' must be {must}; got {v!r}")

    def fit(self, data: pd.DataFrame, *, schema: Schema | None = None) -> LibraryGenerator:
        """Learn from ``data`` (a schema is inferred when none is given); returns ``self``."""
        started = time.perf_counter()
        self._validate_params()
        if not isinstance(data, pd.DataFrame):
            raise DataError(f"data must be a pandas DataFrame; got {type(data).__name__}")
        if len(data) == 0:
            raise DataError("the data has no rows to learn from")
        if schema is None:
            schema = infer_schema(data)
        else:
            schema.validate(data)
        for c in schema.columns:
            if c.kind == "text":
                warn(f"column '{c.name}' holds free text, which is not generated; left out")
        lib = self._import()
        self.encoder_ = TableEncoder.fit(data, schema)
        self._fit_library(lib, self.encoder_.encode(data), data)
        self.schema_ = schema
        self.training_record_ = {
            "generator": self.name,
            "params": self.get_params(),
            "n_rows": int(len(data)),
            "fit_seconds": round(time.perf_counter() - started, 3),
            "peak_rss_mb": peak_rss_mb(),
            "runtime": runtime_info(),
            "library": {self._package: library_version(self._package)},
            **self._extra_record(),
        }
        return self

    def sample(
        self,
        n: int,
        *,
        conditions: Mapping[str, Any] | None = None,
        seed: int | None = None,
    ) -> pd.DataFrame:
        """Return ``n`` rows valid for the schema; every row satisfies ``conditions``."""
        self._check_fitted()
        n = self._check_n(n)
        conds = resolve_conditions(conditions, self.schema_)
        self.encoder_.check_conditions(conds)
        lib = self._import()
        rows = rejection_sample(
            lambda m, s: self._draw(lib, m, s, conds),
            n,
            conds,
            self.schema_,
            seed=seed,
            what=self.name,
        )
        return self._finish(rows, start=0)

    def _finish(self, rows: pd.DataFrame, *, start: int) -> pd.DataFrame:
        out: dict[str, Any] = {}
        for c in self.schema_.columns:
            if c.kind == "text":
                continue
            if c.kind == "identifier":
                out[c.name] = surrogate_ids(c.dtype, start, len(rows))
            else:
                out[c.name] = rows[c.name].reset_index(drop=True)
        return pd.DataFrame(out)

    # -- persistence ----------------------------------------------------------------------------
    def save(self, path: str | Path) -> Path:
        """Write the model folder: generator.json, schema.json, training.json and model/."""
        self._check_fitted()
        path = Path(path)
        with atomic_folder(path) as tmp:
            model = tmp / "model"
            model.mkdir()
            (model / "encoding.json").write_text(
                json.dumps(self.encoder_.to_dict()), encoding="utf-8"
            )
            self._save_model(model)
            write_common(
                tmp,
                name=self.name,
                format_version=self._format_version,
                params=self.get_params(),
                schema=self.schema_,
                training=self.training_record_,
            )
        return path

    @classmethod
    def load(cls, path: str | Path, *, trust_pickle: bool = False) -> LibraryGenerator:
        """Load a model folder written by :meth:`save`.

        A ``pickled`` generator's folder is refused unless ``trust_pickle=True``, before
        anything in it but its JSON files is read.
        """
        folder, _, schema, params = open_folder(
            path, name=cls.name, format_version=cls._format_version, param_names=cls._param_names()
        )
        if cls.pickled and trust_pickle is not True:
            raise pickle_refusal(folder, generator=cls.name, file=f"model/{cls._pickle_file}")
        self = cls(**params)
        lib = self._import()
        encoding = read_json(folder / "model" / "encoding.json", folder)
        try:
            self.encoder_ = TableEncoder.from_dict(encoding, schema)
        except (KeyError, TypeError, DataError) as e:
            raise ModelFolderError(
                f"model folder {folder} is corrupted: model/encoding.json does not match the "
                f"schema ({e})"
            ) from None
        try:
            self._load_model(lib, folder / "model")
        except HealthsynthError:
            raise
        except Exception as e:  # a library's loader raises anything on a file it cannot read
            detail = " ".join(str(e).split())[:300]
            raise ModelFolderError(
                f"model folder {folder} is corrupted: the '{cls.name}' model in model/ could "
                f"not be loaded ({type(e).__name__}: {detail}); fit the model again"
            ) from None
        self.training_record_ = read_json(folder / "training.json", folder)
        self.schema_ = schema
        return self


def model_file(folder: Path, name: str) -> Path:
    """``folder / name``, or :class:`ModelFolderError` when it is missing."""
    p = folder / name
    if not p.exists():
        raise ModelFolderError(
            f"model folder {folder.parent} is incomplete: model/{name} is missing; "
            "fit the model again"
        )
    return p
