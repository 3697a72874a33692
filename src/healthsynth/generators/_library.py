"""What the generators that wrap an outside library share.

* :func:`require` imports the library when it is first needed and turns a missing one into a
  :class:`~healthsynth.errors.MissingExtraError` that names the extra to install.
* :class:`TableEncoder` turns a table into the all-numeric form these libraries accept, and
  generated rows back into values that are valid for the schema. Numbers (and dates, as days
  since 1970) have their missing values replaced by the training median and get a 0/1 missing
  flag column, learned like any other column, so missingness can depend on the other columns;
  decoding puts a missing value wherever the flag says so. Categories become integer codes in
  the order of the schema, with missing as a code of its own. Decoding rounds to each column's
  precision, clips to the range seen in training and restores the training dtype.
* :func:`rejection_sample` draws batches until enough rows satisfy the conditions, and says so
  in one sentence when the conditions are too rare to meet that way.
* :class:`LibraryGenerator` is the fit / sample / save / load skeleton of those generators.
"""

from __future__ import annotations

import contextlib
import importlib
import json
import logging
import math
import time
from collections.abc import Callable, Iterator, Mapping
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from types import ModuleType
from typing import Any, ClassVar

import numpy as np
import pandas as pd

from healthsynth.data import Schema, infer_schema
from healthsynth.data._schema import Column
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

_EPOCH = pd.Timestamp("1970-01-01")
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


# -- encoding ----------------------------------------------------------------------------------
class TableEncoder:
    """Two-way map between a table and the all-numeric frame a library learns from.

    Use :meth:`fit` to build one from training data; the state is plain JSON
    (:meth:`to_dict` / :meth:`from_dict`).

    Attributes
    ----------
    numbers
        Library columns holding continuous values (imputed, never missing).
    categories
        Library columns holding integer codes: category codes and 0/1 missing flags.
    """

    def __init__(self, schema: Schema, specs: list[dict[str, Any]]) -> None:
        self.schema = schema
        self.specs = specs
        self.numbers: list[str] = []
        self.categories: list[str] = []
        for s in specs:
            if s["type"] == "number" and s["fixed"] is None:
                self.numbers.append(s["name"])
            if s["type"] == "category":
                self.categories.append(s["name"])
            if s.get("flag"):
                self.categories.append(s["flag"])
        self._by_name = {s["name"]: s for s in specs}

    @property
    def columns(self) -> list[str]:
        """All library columns, in table order (each flag right after its column)."""
        out: list[str] = []
        for s in self.specs:
            if s["type"] == "category" or (s["type"] == "number" and s["fixed"] is None):
                out.append(s["name"])
            if s.get("flag"):
                out.append(s["flag"])
        return out

    def spec(self, name: str) -> dict[str, Any]:
        """The encoding of schema column ``name``."""
        return self._by_name[name]

    # -- fitting --------------------------------------------------------------------------------
    @classmethod
    def fit(cls, data: pd.DataFrame, schema: Schema) -> TableEncoder:
        """Learn medians, ranges, seen codes and which columns need a missing flag."""
        taken = set(schema.names)
        specs: list[dict[str, Any]] = []
        for c in schema.modelled:
            s = data[c.name]
            if c.kind in ("categorical", "boolean"):
                codes = _codes(s, c)
                k = len(c.categories or ())
                has_missing = bool((codes == k).any())
                seen = sorted(int(v) for v in np.unique(codes))
                spec: dict[str, Any] = {
                    "name": c.name,
                    "type": "category",
                    "n_codes": k + (1 if has_missing else 0),
                    "missing_code": k if has_missing else None,
                    "seen": seen,
                }
                if len(seen) == 1:
                    spec = {"name": c.name, "type": "constant", "value": seen[0]}
                specs.append(spec)
                continue
            x = _to_float(s, c)
            present = x[~np.isnan(x)]
            distinct = np.unique(present)
            if len(present) == 0:
                specs.append({"name": c.name, "type": "constant", "value": None})
                continue
            if len(distinct) == 1 and len(present) == len(x):
                specs.append({"name": c.name, "type": "constant", "value": float(distinct[0])})
                continue
            flag = None
            if len(present) < len(x):
                flag = _free_name(f"{c.name}__missing", taken)
                taken.add(flag)
            spec = {
                "name": c.name,
                "type": "number",
                "fill": float(np.median(present)),
                "low": float(present.min()),
                "high": float(present.max()),
                "fixed": float(distinct[0]) if len(distinct) == 1 else None,
                "flag": flag,
            }
            if c.kind == "datetime":
                # dates stay dates; date-times are kept to the second
                spec["step"] = 1.0 if np.all(present == np.round(present)) else 1 / 86400
            specs.append(spec)
        return cls(schema, specs)

    def to_dict(self) -> dict[str, Any]:
        """JSON-serializable state."""
        return {"columns": self.specs}

    @classmethod
    def from_dict(cls, d: Mapping[str, Any], schema: Schema) -> TableEncoder:
        """Rebuild from :meth:`to_dict` output."""
        return cls(schema, [dict(s) for s in d["columns"]])

    # -- encode / decode ------------------------------------------------------------------------
    def encode(self, data: pd.DataFrame) -> pd.DataFrame:
        """The library frame: floats for numbers, int64 codes for categories and flags."""
        out: dict[str, Any] = {}
        for s in self.specs:
            col = self.schema[s["name"]]
            if s["type"] == "category":
                out[s["name"]] = _codes(data[s["name"]], col)
            elif s["type"] == "number":
                x = _to_float(data[s["name"]], col)
                miss = np.isnan(x)
                if s["fixed"] is None:
                    out[s["name"]] = np.where(miss, s["fill"], x)
                if s["flag"]:
                    out[s["flag"]] = miss.astype(np.int64)
        return pd.DataFrame(out, columns=self.columns, index=range(len(data)))

    def decode(self, frame: pd.DataFrame) -> pd.DataFrame:
        """Schema values from a library frame: rounded, clipped, missing re-applied, dtyped."""
        n = len(frame)
        out: dict[str, pd.Series] = {}
        for s in self.specs:
            col = self.schema[s["name"]]
            if s["type"] == "constant":
                if col.kind in ("categorical", "boolean"):
                    values = self._categories_of(col, s)
                    arr = np.empty(n, dtype=object)
                    arr[:] = [values[s["value"]]] * n
                    out[col.name] = _restore_dtype(pd.Series(arr), col)
                else:
                    v = np.nan if s["value"] is None else s["value"]
                    out[col.name] = _restore_dtype(pd.Series(np.full(n, v, float)), col)
                continue
            if s["type"] == "category":
                codes = pd.to_numeric(frame[s["name"]], errors="coerce").to_numpy(float)
                codes = np.nan_to_num(codes, nan=float(s["missing_code"] or 0))
                idx = np.clip(np.rint(codes), 0, s["n_codes"] - 1).astype(np.int64)
                pool = np.empty(s["n_codes"], dtype=object)
                pool[:] = self._categories_of(col, s)
                out[col.name] = _restore_dtype(pd.Series(pool[idx]), col)
                continue
            if s["fixed"] is None:
                x = pd.to_numeric(frame[s["name"]], errors="coerce").to_numpy(float)
            else:
                x = np.full(n, s["fixed"])
            miss = np.isnan(x)
            if s["flag"]:
                flag = pd.to_numeric(frame[s["flag"]], errors="coerce").to_numpy(float)
                miss |= np.nan_to_num(flag, nan=1.0) >= 0.5
            x = _round_clip(np.where(miss, s["fill"], x), s, col)
            out[col.name] = _restore_dtype(pd.Series(np.where(miss, np.nan, x)), col)
        return pd.DataFrame(out)

    def _categories_of(self, col: Column, s: Mapping[str, Any]) -> list[Any]:
        values: list[Any] = list(col.categories or ())
        if s["type"] == "constant" and s["value"] >= len(values):
            return [*values, None]
        if s.get("missing_code") is not None:
            values.append(None)
        return values

    # -- conditions -----------------------------------------------------------------------------
    def check_conditions(self, conds: Mapping[str, Condition]) -> None:
        """Refuse at once a condition that no value seen in training can meet."""
        for name, cond in conds.items():
            s = self.spec(name)
            col = self.schema[name]
            if col.kind in ("categorical", "boolean"):
                cats = list(col.categories or ())
                seen = [s["value"]] if s["type"] == "constant" else s["seen"]
                ok = [
                    i
                    for i in seen
                    if i < len(cats) and condition_mask(pd.Series([cats[i]]), cond, col)[0]
                ]
                if not ok:
                    raise ConditionError(
                        f"no value of column '{name}' seen in training satisfies {cond.describe()}"
                    )
                continue
            if cond.values is not None:
                continue
            if s["type"] == "constant":
                low = high = s["value"] if s["value"] is not None else math.nan
            else:
                low, high = s["low"], s["high"]
            if not (cond.low <= high and cond.high >= low):
                raise ConditionError(
                    f"no value of column '{name}' in its training range [{low}, {high}] "
                    f"satisfies {cond.describe()}"
                )

    def codes_satisfying(self, name: str, cond: Condition) -> list[int]:
        """Codes seen in training of categorical column ``name`` whose value meets ``cond``."""
        s = self.spec(name)
        col = self.schema[name]
        cats = list(col.categories or ())
        seen = [s["value"]] if s["type"] == "constant" else s["seen"]
        return [
            i for i in seen if i < len(cats) and condition_mask(pd.Series([cats[i]]), cond, col)[0]
        ]


def _codes(s: pd.Series, column: Column) -> np.ndarray:
    """Integer codes of a categorical column (missing -> number of categories)."""
    cats = list(column.categories or ())
    lookup: dict[Any, int] = {}
    for i, c in enumerate(cats):
        lookup.setdefault(c, i)
    by_text = {str(c): i for i, c in reversed(list(enumerate(cats)))}
    out = np.empty(len(s), dtype=np.int64)
    for j, v in enumerate(s.tolist()):
        if v is None or (isinstance(v, float) and math.isnan(v)) or v is pd.NA or v is pd.NaT:
            out[j] = len(cats)
            continue
        try:
            code = lookup.get(v)
        except TypeError:
            code = None
        if code is None:
            code = by_text.get(str(v))
        if code is None:
            raise DataError(
                f"column '{column.name}' holds {v!r}, which is not among its categories; "
                "check the data against the schema"
            )
        out[j] = code
    return out


def _to_float(s: pd.Series, column: Column) -> np.ndarray:
    if column.kind == "datetime":
        t = pd.to_datetime(s, errors="coerce")
        if getattr(t.dt, "tz", None) is not None:
            t = t.dt.tz_convert(None)
        days = (t - _EPOCH) / pd.Timedelta(days=1)
        return days.to_numpy(float)
    return pd.to_numeric(s, errors="coerce").to_numpy(float)


def _round_clip(x: np.ndarray, spec: Mapping[str, Any], column: Column) -> np.ndarray:
    low, high = spec["low"], spec["high"]
    x = np.clip(x, low, high)
    if column.kind == "datetime":
        step = spec.get("step", 1 / 86400)
        return np.clip(np.round(x / step) * step, low, high)
    prec = 0 if column.kind == "integer" else column.precision
    if prec is None:
        return x
    return np.clip(np.round(x, prec), low, high)


def _restore_dtype(s: pd.Series, column: Column) -> pd.Series:
    """Give generated values the dtype the training column had."""
    dtype = column.dtype
    has_na = bool(s.isna().any())
    if column.kind == "datetime":
        seconds = np.round(s.to_numpy(float) * 86400.0)
        out = pd.Series(_EPOCH + pd.to_timedelta(seconds, unit="s"))
        with contextlib.suppress(TypeError, ValueError):
            out = out.astype(dtype)
        return out
    if column.kind in ("categorical", "boolean"):
        if has_na and dtype.startswith(("int", "uint", "bool")):
            return s.astype(object)
        try:
            return s.astype(dtype)
        except (TypeError, ValueError):
            return s.astype(object)
    if dtype.startswith(("int", "uint")) and not has_na:
        return s.round().astype(dtype)
    if dtype.startswith(("Int", "UInt")):
        return s.round().astype(dtype)
    return s.astype("float64")


def _free_name(name: str, taken: set[str]) -> str:
    while name in taken:
        name += "_"
    return name


# -- conditions --------------------------------------------------------------------------------
def condition_mask(s: pd.Series, cond: Condition, column: Column) -> np.ndarray:
    """Which values of ``s`` (one column of decoded rows) satisfy ``cond``."""
    present = s.notna().to_numpy()
    if cond.values is not None:
        texts = {str(v) for v in cond.values}
        hit = s.isin(list(cond.values)).to_numpy() | s.astype(str).isin(texts).to_numpy()
        return hit & present
    if column.kind == "datetime":
        x = _to_float(s, column)
    else:
        x = pd.to_numeric(s, errors="coerce").to_numpy(float)
    with np.errstate(invalid="ignore"):
        return (x >= cond.low) & (x <= cond.high) & present


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
