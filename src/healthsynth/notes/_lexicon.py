"""The lexicon: which columns and event items carry which clinical concept, and its words.

The packaged ``lexicon.yaml`` covers the example cohorts (PBC, NAFLD, Pima); a YAML file of the
same shape extends or replaces it (``lexicon=``).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Any

from healthsynth.errors import DataFileError, ParameterError

__all__ = ["Concept", "Lexicon", "load_lexicon"]


@dataclass(frozen=True)
class Concept:
    """One clinical concept a note can state.

    Parameters
    ----------
    name
        How the prompt names it (``bilirubin``).
    kind
        ``condition`` (present or absent) or ``lab`` (a number).
    columns, items
        Table columns and timeline event items that carry it (lower case).
    terms
        Words a note uses for it, longest first.
    unit
        The unit shown in the prompt (labs).
    """

    name: str
    kind: str
    columns: tuple[str, ...] = ()
    items: tuple[str, ...] = ()
    terms: tuple[str, ...] = ()
    unit: str = ""

    def pattern(self) -> re.Pattern[str]:
        """One regular expression matching any of the terms as whole words."""
        return _term_pattern(self.terms)


@dataclass(frozen=True)
class Lexicon:
    """Concepts by column and by event item, and the demographic column names."""

    concepts: tuple[Concept, ...]
    age_columns: tuple[str, ...] = ("age",)
    sex_columns: tuple[str, ...] = ("sex", "gender")
    male_flags: tuple[str, ...] = ("male",)
    female_flags: tuple[str, ...] = ("female",)
    _by_column: dict[str, Concept] = field(default_factory=dict, compare=False, repr=False)
    _by_item: dict[str, Concept] = field(default_factory=dict, compare=False, repr=False)

    def __post_init__(self) -> None:
        for c in self.concepts:
            for col in c.columns:
                self._by_column.setdefault(col, c)
            for item in c.items:
                self._by_item.setdefault(item, c)

    def for_column(self, name: str) -> Concept | None:
        """The concept a table column carries, if the lexicon knows it."""
        return self._by_column.get(str(name).lower())

    def for_item(self, item: str) -> Concept | None:
        """The concept a timeline event item carries, if the lexicon knows it."""
        return self._by_item.get(str(item).lower())

    def role(self, column: str) -> str | None:
        """``age``, ``sex``, ``male_flag`` or ``female_flag`` for a demographic column."""
        name = str(column).lower()
        for role, names in (
            ("age", self.age_columns),
            ("sex", self.sex_columns),
            ("male_flag", self.male_flags),
            ("female_flag", self.female_flags),
        ):
            if name in names:
                return role
        return None


def _term_pattern(terms: tuple[str, ...]) -> re.Pattern[str]:
    parts = []
    for t in sorted(terms, key=len, reverse=True):
        body = re.escape(t).replace(r"\ ", r"[\s-]+")
        # capitals in a term are significant (AST, MI); lower-case terms match in any case
        parts.append(body if t != t.lower() else f"(?i:{body})")
    return re.compile(r"(?<![\w-])(?:" + "|".join(parts) + r")(?![\w-])")


def _strings(value: Any, where: str) -> tuple[str, ...]:
    if value is None:
        return ()
    if isinstance(value, str) or not isinstance(value, (list, tuple)):
        raise ParameterError(f"{where} must be a list of strings; got {value!r}")
    return tuple(str(v) for v in value)


def _parse(data: Any, source: str) -> Lexicon:
    if not isinstance(data, Mapping):
        raise ParameterError(f"lexicon {source} must be a mapping with conditions and labs")
    concepts = []
    for kind, section in (("condition", "conditions"), ("lab", "labs")):
        entries = data.get(section) or {}
        if not isinstance(entries, Mapping):
            raise ParameterError(f"lexicon {source}: '{section}' must map names to entries")
        for name, spec in entries.items():
            where = f"lexicon {source}: {section}.{name}"
            if not isinstance(spec, Mapping):
                raise ParameterError(f"{where} must be a mapping with columns, items and terms")
            terms = _strings(spec.get("terms"), f"{where}.terms") or (str(name),)
            concepts.append(
                Concept(
                    name=str(name),
                    kind=kind,
                    columns=tuple(c.lower() for c in _strings(spec.get("columns"), where)),
                    items=tuple(i.lower() for i in _strings(spec.get("items"), where)),
                    terms=tuple(sorted(terms, key=len, reverse=True)),
                    unit=str(spec.get("unit") or ""),
                )
            )
    demo = data.get("demographics") or {}
    if not isinstance(demo, Mapping):
        raise ParameterError(f"lexicon {source}: 'demographics' must be a mapping")

    def names(key: str, default: tuple[str, ...]) -> tuple[str, ...]:
        got = _strings(demo.get(key), f"lexicon {source}: demographics.{key}")
        return tuple(n.lower() for n in got) if got else default

    return Lexicon(
        concepts=tuple(concepts),
        age_columns=names("age", ("age",)),
        sex_columns=names("sex", ("sex", "gender")),
        male_flags=names("male_flag", ("male",)),
        female_flags=names("female_flag", ("female",)),
    )


@cache
def _packaged() -> Lexicon:
    import yaml

    text = resources.files("healthsynth.notes").joinpath("lexicon.yaml").read_text("utf-8")
    return _parse(yaml.safe_load(text), "healthsynth/notes/lexicon.yaml")


def load_lexicon(path: str | Path | Lexicon | None = None, *, extend: bool = True) -> Lexicon:
    """The packaged lexicon, or one read from a YAML file (added to the packaged one).

    Parameters
    ----------
    path
        A YAML file shaped like the packaged ``lexicon.yaml``; None gives the packaged one.
    extend
        Put the file's concepts before the packaged ones (True) or use the file alone.
    """
    if path is None:
        return _packaged()
    if isinstance(path, Lexicon):
        return path
    import yaml

    path = Path(path)
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise DataFileError(f"lexicon file {path} does not exist") from None
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as e:
        detail = " ".join(str(e).split())[:200]
        raise DataFileError(f"lexicon file {path} cannot be read as YAML ({detail})") from None
    own = _parse(data, str(path))
    if not extend:
        return own
    base = _packaged()
    return Lexicon(
        concepts=own.concepts + base.concepts,
        age_columns=tuple(dict.fromkeys(own.age_columns + base.age_columns)),
        sex_columns=tuple(dict.fromkeys(own.sex_columns + base.sex_columns)),
        male_flags=tuple(dict.fromkeys(own.male_flags + base.male_flags)),
        female_flags=tuple(dict.fromkeys(own.female_flags + base.female_flags)),
    )
