"""The table schema: what each column is, what values it may hold, and what role it plays."""

from __future__ import annotations

import json
import warnings
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import pandas as pd

from healthsynth.data._column import KINDS, ROLES, Column, Kind, beyond_decimals
from healthsynth.data._column_infer import DEFAULT_MAX_CATEGORIES, infer_column
from healthsynth.errors import (
    DataError,
    HealthsynthWarning,
    ParameterError,
    SchemaValidationError,
)

__all__ = ["KINDS", "ROLES", "SCHEMA_VERSION", "Column", "Schema", "infer_schema"]

SCHEMA_VERSION = 1
#: An integer target with at most this many distinct values is inferred as categorical.
_MAX_CLASS_LEVELS = 10
#: A target missing in at least this share of rows draws a warning.
TARGET_MISSING_WARN = 0.9


@dataclass(frozen=True)
class Schema:
    """The columns of a table, their kinds, domains and roles.

    Inferred once with :func:`infer_schema`, editable with :meth:`with_roles` and
    :meth:`with_kind`, saved as versioned JSON with :meth:`save`.
    """

    columns: tuple[Column, ...]
    version: int = SCHEMA_VERSION
    metadata: dict[str, Any] = field(default_factory=dict)

    # -- access ---------------------------------------------------------------------------
    @property
    def names(self) -> list[str]:
        """Column names in table order."""
        return [c.name for c in self.columns]

    def __getitem__(self, name: str) -> Column:
        for c in self.columns:
            if c.name == name:
                return c
        raise DataError(
            f"column '{name}' is not in the schema; the columns are: {', '.join(self.names)}"
        )

    def __contains__(self, name: object) -> bool:
        return any(c.name == name for c in self.columns)

    def with_role(self, role: str) -> list[str]:
        """Names of the columns that carry ``role``."""
        return [c.name for c in self.columns if role in c.roles]

    @property
    def target(self) -> str | None:
        """The target column, if one was declared."""
        t = self.with_role("target")
        return t[0] if t else None

    @property
    def sensitive(self) -> list[str]:
        """Sensitive-attribute columns."""
        return self.with_role("sensitive")

    @property
    def modelled(self) -> list[Column]:
        """Columns that generators learn."""
        return [c for c in self.columns if c.is_modelled]

    # -- editing ----------------------------------------------------------------------------
    def with_roles(
        self,
        *,
        target: str | None = None,
        sensitive: Iterable[str] = (),
        identifiers: Iterable[str] = (),
    ) -> Schema:
        """Return a copy with the given roles set (each name must be a column)."""
        sensitive, identifiers = list(sensitive), list(identifiers)
        for what, names in (
            ("target", [target] if target else []),
            ("sensitive", sensitive),
            ("identifier", identifiers),
        ):
            missing = [n for n in names if n not in self]
            if missing:
                raise DataError(
                    f"{what} column '{missing[0]}' is not in the data; the columns are: "
                    f"{', '.join(self.names)}"
                )
        cols = []
        for c in self.columns:
            roles = [r for r in c.roles if r not in ("target",)] if target else list(c.roles)
            kind = c.kind
            if c.name == target:
                roles.append("target")
                if c.kind in ("identifier", "text"):
                    raise DataError(
                        f"target column '{c.name}' was inferred as {c.kind}; a target must be "
                        "categorical, boolean or numeric"
                    )
            if c.name in sensitive and "sensitive" not in roles:
                roles.append("sensitive")
            if c.name in identifiers:
                kind = "identifier"
                if "identifier" not in roles:
                    roles.append("identifier")
            cols.append(replace(c, kind=kind, roles=tuple(roles)))
        return replace(self, columns=tuple(cols))

    def with_kind(self, name: str, kind: Kind, data: pd.DataFrame | None = None) -> Schema:
        """Return a copy where column ``name`` has ``kind``; ``data`` re-infers its domain."""
        col = self[name]
        if data is not None:
            new = infer_column(data[name], name, forced_kind=kind)
            new = replace(new, roles=col.roles)
        else:
            new = replace(col, kind=kind)
        return replace(self, columns=tuple(new if c.name == name else c for c in self.columns))

    # -- validation -------------------------------------------------------------------------
    def validate(
        self, df: pd.DataFrame, *, what: str = "the data", strict: bool = True
    ) -> list[str]:
        """Check ``df`` against the schema and report every problem at once.

        Parameters
        ----------
        df
            Data to check.
        what
            How to name the data in messages (e.g. a file name).
        strict
            Raise :class:`SchemaValidationError` listing all problems (default); otherwise
            return the list of problems.
        """
        problems: list[str] = []
        missing = [n for n in self.names if n not in df.columns and self[n].kind != "text"]
        if missing:
            problems.append(f"columns missing: {', '.join(missing)}")
        extra = [str(c) for c in df.columns if c not in self]
        if extra:
            problems.append(f"columns not in the schema: {', '.join(extra)}")
        for c in self.columns:
            if c.name not in df.columns or c.kind in ("identifier", "text"):
                continue
            s = df[c.name]
            present = s.dropna()
            if c.missing_rate == 0.0 and len(present) < len(s):
                problems.append(
                    f"column '{c.name}' has {len(s) - len(present)} missing values but had none"
                )
            if c.kind in ("categorical", "boolean"):
                allowed = set(c.categories or ())
                bad = sorted({str(v) for v in present.unique() if v not in allowed})
                if bad:
                    problems.append(
                        f"column '{c.name}' has values outside its categories: {', '.join(bad[:5])}"
                        + (" ..." if len(bad) > 5 else "")
                    )
            elif c.kind in ("numeric", "integer"):
                num = pd.to_numeric(present, errors="coerce")
                if num.isna().any():
                    ex = present[num.isna()].iloc[0]
                    problems.append(f"column '{c.name}' has non-numeric values such as {ex!r}")
                    continue
                if len(num):
                    lo, hi = float(num.min()), float(num.max())
                    if c.minimum is not None and lo < float(c.minimum) - 1e-9:
                        problems.append(f"column '{c.name}' has {lo} below its minimum {c.minimum}")
                    if c.maximum is not None and hi > float(c.maximum) + 1e-9:
                        problems.append(f"column '{c.name}' has {hi} above its maximum {c.maximum}")
                    limit = c.precision if c.max_decimals is None else c.max_decimals
                    if limit is not None and beyond_decimals(num.to_numpy(float), limit).any():
                        problems.append(
                            f"column '{c.name}' has values with more than {limit} decimals"
                        )
        if problems and strict:
            raise SchemaValidationError(problems, what=what)
        return problems

    # -- persistence ------------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        """Return a JSON-serializable dict."""
        return {
            "format": "healthsynth.schema",
            "version": self.version,
            "columns": [c.to_dict() for c in self.columns],
            "metadata": self.metadata,
        }

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> Schema:
        """Build a schema from :meth:`to_dict` output."""
        if not isinstance(d, Mapping) or d.get("format") != "healthsynth.schema":
            raise DataError("not a healthsynth schema (the 'format' field is missing or wrong)")
        if int(d.get("version", 0)) > SCHEMA_VERSION:
            raise DataError(
                f"schema version {d.get('version')} is newer than this healthsynth supports "
                f"({SCHEMA_VERSION}); upgrade healthsynth"
            )
        return cls(
            columns=tuple(Column.from_dict(c) for c in d["columns"]),
            version=int(d["version"]),
            metadata=dict(d.get("metadata", {})),
        )

    def save(self, path: str | Path) -> None:
        """Write the schema as JSON (atomically)."""
        from healthsynth.data._io import atomic_write_text

        atomic_write_text(Path(path), json.dumps(self.to_dict(), indent=2))

    @classmethod
    def load(cls, path: str | Path) -> Schema:
        """Read a schema written by :meth:`save`."""
        path = Path(path)
        try:
            return cls.from_dict(json.loads(path.read_text(encoding="utf-8")))
        except FileNotFoundError:
            raise DataError(f"schema file {path} does not exist") from None
        except (
            json.JSONDecodeError,
            KeyError,
            TypeError,
            ValueError,
            AttributeError,
            UnicodeDecodeError,
            ParameterError,
        ) as e:
            detail = " ".join(str(e).split())
            raise DataError(f"schema file {path} is corrupted ({detail}); re-create it") from None
        except DataError as e:
            raise DataError(f"schema file {path} cannot be used: {e}") from None


# ---------------------------------------------------------------------------------------------
def infer_schema(
    df: pd.DataFrame,
    *,
    target: str | None = None,
    sensitive: Iterable[str] = (),
    identifiers: Iterable[str] = (),
    kinds: Mapping[str, Kind] | None = None,
    max_categories: int = DEFAULT_MAX_CATEGORIES,
    source: str = "the data",
) -> Schema:
    """Infer a :class:`Schema` from a DataFrame.

    Parameters
    ----------
    df
        The table.
    target, sensitive, identifiers
        Roles to assign (names must be columns of ``df``).
    kinds
        Column kinds that override inference, e.g. ``{"stage": "categorical"}``.
    max_categories
        A text column with more distinct values than this (and not an identifier) is refused
        with advice, since no generator can learn such a domain from a table.
    source
        How to name the data in error messages (e.g. the file name).
    """
    if not isinstance(df, pd.DataFrame):
        raise DataError(f"{source} must be a pandas DataFrame; got {type(df).__name__}")
    if df.shape[1] == 0:
        raise DataError(f"{source} has no columns")
    if df.shape[0] == 0:
        raise DataError(f"{source} has a header but no rows")
    dup = pd.Index(df.columns)[pd.Index(df.columns).duplicated()].unique().tolist()
    if dup:
        raise DataError(
            f"{source} has duplicate column names: {', '.join(map(str, dup))}; rename them"
        )
    kinds = dict(kinds or {})
    identifiers = set(identifiers)
    unknown = [n for n in list(kinds) + sorted(identifiers) if n not in df.columns]
    if unknown:
        raise DataError(
            f"column '{unknown[0]}' given as an override is not in {source}; the columns are: "
            f"{', '.join(map(str, df.columns))}"
        )
    cols = []
    for name in df.columns:
        forced: Kind | None = kinds.get(name)
        if name in identifiers:
            forced = "identifier"
        cols.append(
            infer_column(
                df[name],
                str(name),
                forced_kind=forced,
                max_categories=max_categories,
                source=source,
            )
        )
    schema = Schema(columns=tuple(cols), metadata={"n_rows": int(len(df))})
    schema = schema.with_roles(target=target, sensitive=sensitive, identifiers=identifiers)
    # a whole-number target with a handful of values is a class label (e.g. 0 = censored,
    # 1 = transplant, 2 = dead), so evaluation treats it as classification
    if target is not None and target not in kinds and schema[target].kind == "integer":
        if df[target].nunique() <= _MAX_CLASS_LEVELS:
            schema = schema.with_kind(target, "categorical", data=df)
    if target is not None:
        _warn_about_target(df[target], target, source)
    return schema


def _warn_about_target(s: pd.Series, name: str, source: str) -> None:
    """Warn when the target cannot teach anything: (almost) all missing, or a single value."""
    n, present = len(s), s.dropna()
    if len(present) == 0:
        message = (
            f"target column '{name}' in {source} has no values (all {n} rows are missing); "
            "check that the file was read as intended or choose another target"
        )
    elif len(present) <= (1 - TARGET_MISSING_WARN) * n:
        message = (
            f"target column '{name}' in {source} is {1 - len(present) / n:.0%} missing (a value "
            f"in {len(present)} of {n} rows); check that the file was read as intended, since "
            "models and utility scores rest on those rows alone"
        )
    elif present.nunique() == 1:
        message = (
            f"target column '{name}' in {source} holds one value only ({present.iloc[0]!r}); "
            "nothing can be learned about it and utility scores are meaningless, so check the "
            "target"
        )
    else:
        return
    warnings.warn(message, HealthsynthWarning, stacklevel=3)
