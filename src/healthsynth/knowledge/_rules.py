"""Rules: implications between predicates (:mod:`._predicate`), and sets of rules."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from healthsynth.data import Schema
from healthsynth.errors import DataError, ParameterError, SchemaValidationError
from healthsynth.knowledge._predicate import (
    Predicate,
    _check_keys,
    _predicate_problem,
    normalize_code,
)

__all__ = ["RULES_VERSION", "Predicate", "Rule", "RuleSet", "normalize_code"]

#: version written by :meth:`RuleSet.to_dict` and accepted by :meth:`RuleSet.from_dict`
RULES_VERSION = 1


@dataclass(frozen=True)
class Rule:
    """If every ``when`` predicate holds, ``then`` must hold.

    Parameters
    ----------
    name
        Identifier, unique within a :class:`RuleSet` (e.g. ``"range:age"``).
    when
        Conditions that must all hold for the rule to apply; empty means the rule always applies.
    then
        What must be true where the rule applies.
    missing_ok
        Whether a missing value in ``then.column`` is acceptable (default). When False, a
        missing value there is a violation.
    description
        A sentence for people, shown in reports.
    source
        Where the rule came from: ``"range"``, ``"implication"``, ``"icd10cm"`` or ``"user"``.
    """

    name: str
    when: tuple[Predicate, ...]
    then: Predicate
    missing_ok: bool = True
    description: str = ""
    source: str = "user"

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not self.name:
            raise ParameterError(f"a rule's name must be a non-empty string; got {self.name!r}")
        when = tuple(self.when)
        bad = [p for p in (*when, self.then) if not isinstance(p, Predicate)]
        if bad:
            raise ParameterError(
                f"rule '{self.name}': when and then must be Predicate objects; got "
                f"{type(bad[0]).__name__}"
            )
        object.__setattr__(self, "when", when)
        if not self.description:
            object.__setattr__(self, "description", self._default_description())

    def _default_description(self) -> str:
        then = self.then.describe()
        if not self.when:
            return f"{then} (always)"
        return "if " + " and ".join(p.describe() for p in self.when) + f" then {then}"

    @property
    def columns(self) -> tuple[str, ...]:
        """Every column the rule reads: the ``when`` ones first, then ``then.column``."""
        return tuple(dict.fromkeys([*(p.column for p in self.when), self.then.column]))

    def applies(self, df: pd.DataFrame) -> np.ndarray:
        """Rows where every ``when`` predicate holds.

        Parameters
        ----------
        df
            A table with all of :attr:`columns`.

        Returns
        -------
        numpy.ndarray
            Boolean array, one entry per row.
        """
        ok = np.ones(len(df), dtype=bool)
        for p in self.when:
            ok &= p.holds(df[p.column])
        return ok

    def violations(self, df: pd.DataFrame) -> np.ndarray:
        """Rows that break the rule: the rule applies and ``then`` does not hold.

        Parameters
        ----------
        df
            A table with all of :attr:`columns`.

        Returns
        -------
        numpy.ndarray
            Boolean array, one entry per row.
        """
        _require_columns(df, [self])
        target = df[self.then.column]
        bad = self.applies(df) & ~self.then.holds(target)
        if self.missing_ok:
            bad &= ~target.isna().to_numpy(dtype=bool)
        return bad

    def to_dict(self) -> dict[str, Any]:
        """Return a JSON-serializable dict.

        Returns
        -------
        dict
        """
        return {
            "name": self.name,
            "when": [p.to_dict() for p in self.when],
            "then": self.then.to_dict(),
            "missing_ok": self.missing_ok,
            "description": self.description,
            "source": self.source,
        }

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> Rule:
        """Build a rule from :meth:`to_dict` output.

        Parameters
        ----------
        d
            The dict.

        Returns
        -------
        Rule
        """
        _check_keys(d, {"name", "when", "then", "missing_ok", "description", "source"}, "rule")
        for key in ("name", "then"):
            if key not in d:
                raise ParameterError(f"a rule dict needs a '{key}' key")
        return cls(
            name=d["name"],
            when=tuple(Predicate.from_dict(p) for p in d.get("when", ())),
            then=Predicate.from_dict(d["then"]),
            missing_ok=bool(d.get("missing_ok", True)),
            description=str(d.get("description", "")),
            source=str(d.get("source", "user")),
        )


class RuleSet:
    """An ordered collection of rules with unique names.

    Parameters
    ----------
    rules
        The rules.
    """

    def __init__(self, rules: Iterable[Rule] = ()) -> None:
        self.rules: list[Rule] = list(rules)
        seen: set[str] = set()
        for r in self.rules:
            if not isinstance(r, Rule):
                raise ParameterError(f"a RuleSet holds Rule objects; got {type(r).__name__}")
            if r.name in seen:
                raise ParameterError(
                    f"rule name '{r.name}' is used twice; give each rule a unique name"
                )
            seen.add(r.name)

    def __iter__(self) -> Iterator[Rule]:
        return iter(self.rules)

    def __len__(self) -> int:
        return len(self.rules)

    def __repr__(self) -> str:
        return f"RuleSet({len(self.rules)} rules: {', '.join(r.name for r in self.rules)})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, RuleSet) and self.to_dict() == other.to_dict()

    __hash__ = None  # type: ignore[assignment]

    @property
    def columns(self) -> tuple[str, ...]:
        """Every column any rule reads, in first-use order."""
        return tuple(dict.fromkeys(c for r in self.rules for c in r.columns))

    def check(self, schema: Schema) -> None:
        """Check the rules against a schema, reporting every problem at once.

        Problems are: a column that is not in the schema; a range on a column that is not
        numeric or integer; a prefix condition on a numeric, integer, boolean or datetime column;
        a value condition on a categorical or boolean column none of whose values is among the
        column's categories.

        Parameters
        ----------
        schema
            The schema of the data the rules will be applied to.

        Raises
        ------
        SchemaValidationError
            Listing every problem, one sentence each.
        """
        problems: list[str] = []
        for r in self.rules:
            for p in (*r.when, r.then):
                problem = _predicate_problem(r, p, schema)
                if problem:
                    problems.append(problem)
        if problems:
            raise SchemaValidationError(list(dict.fromkeys(problems)), what="the rule set")

    def violations(self, df: pd.DataFrame) -> pd.DataFrame:
        """Which rows break which rule.

        Parameters
        ----------
        df
            The table to check; it must have every column the rules read.

        Returns
        -------
        pandas.DataFrame
            Booleans, one row per row of ``df`` (same index), one column per rule name.

        Raises
        ------
        DataError
            If ``df`` lacks columns the rules need.
        """
        _require_columns(df, self.rules)
        return pd.DataFrame(
            {r.name: r.violations(df) for r in self.rules}, index=df.index, dtype=bool
        )

    def summary(self, df: pd.DataFrame) -> list[dict[str, Any]]:
        """Per rule: how many rows it applies to and how many break it.

        Parameters
        ----------
        df
            The table to check; it must have every column the rules read.

        Returns
        -------
        list of dict
            One dict per rule with ``name``, ``description``, ``source``, ``n_rows_applicable``
            (rows where every ``when`` holds), ``n_violations`` and ``rate`` (violations over all
            rows of ``df``; None for an empty table).
        """
        _require_columns(df, self.rules)
        out = []
        n = len(df)
        for r in self.rules:
            n_bad = int(r.violations(df).sum())
            out.append(
                {
                    "name": r.name,
                    "description": r.description,
                    "source": r.source,
                    "n_rows_applicable": int(r.applies(df).sum()),
                    "n_violations": n_bad,
                    "rate": n_bad / n if n else None,
                }
            )
        return out

    def to_dict(self) -> dict[str, Any]:
        """Return a JSON-serializable dict with a ``version`` key.

        Returns
        -------
        dict
        """
        return {"version": RULES_VERSION, "rules": [r.to_dict() for r in self.rules]}

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> RuleSet:
        """Build a rule set from :meth:`to_dict` output.

        Parameters
        ----------
        d
            The dict.

        Returns
        -------
        RuleSet
        """
        if not isinstance(d, Mapping):
            raise ParameterError(f"a rule set dict must be a mapping; got {type(d).__name__}")
        _check_keys(d, {"version", "rules"}, "rule set")
        version = d.get("version")
        if version != RULES_VERSION:
            raise ParameterError(
                f"rule set version must be {RULES_VERSION}; got {version!r} (written by a newer "
                "healthsynth? upgrade it)"
            )
        return cls(Rule.from_dict(r) for r in d.get("rules", ()))


def _require_columns(df: pd.DataFrame, rules: Iterable[Rule]) -> None:
    need: dict[str, list[str]] = {}
    for r in rules:
        for c in r.columns:
            if c not in df.columns:
                need.setdefault(c, []).append(r.name)
    if need:
        parts = [f"'{c}' (rule {', '.join(names)})" for c, names in need.items()]
        raise DataError(
            f"the table lacks columns the rules need: {'; '.join(parts)}; add them or drop "
            "those rules"
        )
