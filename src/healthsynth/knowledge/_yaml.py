"""Reading rule files written in YAML (the format is described in ``docs/knowledge.md``)."""

from __future__ import annotations

import math
from collections.abc import Mapping
from os import PathLike
from pathlib import Path
from typing import Any

from healthsynth.data._io import read_yaml
from healthsynth.errors import DataFileError, ParameterError
from healthsynth.knowledge._icd10cm import icd10cm_rules
from healthsynth.knowledge._rules import RULES_VERSION, Predicate, Rule, RuleSet

__all__ = ["load_rules", "rules_from_yaml_data"]

_COMMON_KEYS = ("name", "description", "missing_ok")
_KIND_KEYS = ("range", "if", "then", "icd10cm")
_RANGE_KEYS = ("column", "min", "max")
_ICD_KEYS = (
    "code_column",
    "sex_column",
    "female",
    "male",
    "age_column",
    "maternal_age",
    "newborn_max_age",
    "child_max_age",
    "adult_min_age",
)
_CONDITION_KEYS = ("min", "max", "starts_with")


class _EntryError(Exception):
    """A problem in one rule entry; becomes a :class:`DataFileError` with the file and number."""


def load_rules(path: str | PathLike[str]) -> RuleSet:
    """Read rules from a YAML file.

    Parameters
    ----------
    path
        The rule file (see ``docs/knowledge.md`` for the format).

    Returns
    -------
    RuleSet

    Raises
    ------
    DataFileError
        If the file is missing or unreadable, is not valid YAML, or a rule in it is malformed;
        the message is one sentence naming the file, the rule number and the key at fault.
    """
    p = Path(path)
    data = read_yaml(p, what="rules file")
    return rules_from_yaml_data(data, source=f"rules file '{p}'")


def rules_from_yaml_data(data: Any, *, source: str = "the rules") -> RuleSet:
    """Build a rule set from the parsed content of a rule file.

    Parameters
    ----------
    data
        What ``yaml.safe_load`` returns for a rule file: a mapping with ``version`` and ``rules``.
    source
        How to name the origin in messages, e.g. ``"rules file 'x.yaml'"``.

    Returns
    -------
    RuleSet

    Raises
    ------
    DataFileError
        If anything is malformed; one sentence naming ``source``, the rule number and the key.
    """
    if data is None:
        raise DataFileError(f"{source} is empty; write 'version: 1' and a 'rules:' list in it")
    if not isinstance(data, Mapping):
        raise DataFileError(
            f"{source} must be a mapping with 'version' and 'rules' at the top; got a {_type(data)}"
        )
    unknown = [str(k) for k in data if k not in ("version", "rules")]
    if unknown:
        raise DataFileError(
            f"{source} has unknown top-level key '{unknown[0]}'; only 'version' and 'rules' "
            "are allowed"
        )
    version = data.get("version", RULES_VERSION)
    if version != RULES_VERSION:
        raise DataFileError(
            f"{source} has version {version!r}; this healthsynth reads version {RULES_VERSION}"
        )
    if "rules" not in data:
        raise DataFileError(f"{source} has no 'rules' key; add a 'rules:' list of rules")
    entries = data["rules"]
    if not isinstance(entries, list):
        raise DataFileError(
            f"{source}: 'rules' must be a list (each rule starting with '- '); got a "
            f"{_type(entries)}"
        )
    rules: list[Rule] = []
    names: set[str] = set()
    for i, entry in enumerate(entries, start=1):
        where = f"{source}, rule {i}"
        try:
            new = _entry_rules(entry)
        except (_EntryError, ParameterError) as e:
            raise DataFileError(f"{where}: {e}") from None
        for r in new:
            if r.name in names:
                raise DataFileError(
                    f"{where}: the name '{r.name}' is already used by an earlier rule; "
                    "give this rule a unique 'name'"
                )
            names.add(r.name)
            rules.append(r)
    return RuleSet(rules)


def _type(x: Any) -> str:
    if isinstance(x, Mapping):
        return "mapping"
    if isinstance(x, list):
        return "list"
    if x is None:
        return "null"
    return f"{type(x).__name__} ({x!r})"


def _check_keys(entry: Mapping[str, Any], allowed: tuple[str, ...], what: str) -> None:
    for k in entry:
        if k not in allowed:
            raise _EntryError(f"unknown key '{k}' in {what}; allowed keys are {', '.join(allowed)}")


def _entry_rules(entry: Any) -> list[Rule]:
    if not isinstance(entry, Mapping):
        raise _EntryError(
            f"a rule must be a mapping such as 'range: {{column: age, min: 0}}'; got a "
            f"{_type(entry)}"
        )
    kinds = [k for k in ("range", "icd10cm") if k in entry]
    if "if" in entry or "then" in entry:
        kinds.append("if/then")
    if len(kinds) != 1:
        raise _EntryError(
            "a rule needs exactly one of the keys 'range', 'if'/'then' or 'icd10cm'; "
            + (f"got {' and '.join(kinds)}" if kinds else f"got keys {', '.join(map(str, entry))}")
        )
    kind = kinds[0]
    if kind == "range":
        _check_keys(entry, ("range", *_COMMON_KEYS), "a range rule")
        return [_range_rule(entry)]
    if kind == "icd10cm":
        _check_keys(entry, ("icd10cm",), "an icd10cm rule")
        return _icd_rules(entry["icd10cm"])
    _check_keys(entry, ("if", "then", *_COMMON_KEYS), "an if/then rule")
    return _implication_rules(entry)


def _common(entry: Mapping[str, Any]) -> tuple[str | None, str, bool]:
    name = entry.get("name")
    if name is not None and (not isinstance(name, str) or not name.strip()):
        raise _EntryError(f"key 'name' must be non-empty text; got {_type(name)}")
    description = entry.get("description", "")
    if not isinstance(description, str):
        raise _EntryError(f"key 'description' must be text; got {_type(description)}")
    missing_ok = entry.get("missing_ok", True)
    if not isinstance(missing_ok, bool):
        raise _EntryError(f"key 'missing_ok' must be true or false; got {_type(missing_ok)}")
    return (name.strip() if name else None), description, missing_ok


def _number(x: Any, key: str) -> float | None:
    if x is None:
        return None
    if isinstance(x, bool) or not isinstance(x, (int, float)) or not math.isfinite(x):
        raise _EntryError(f"key '{key}' must be a number; got {_type(x)}")
    return float(x)


def _bounds(spec: Mapping[str, Any], prefix: str) -> tuple[float | None, float | None]:
    lo = _number(spec.get("min"), f"{prefix}min")
    hi = _number(spec.get("max"), f"{prefix}max")
    if lo is None and hi is None:
        raise _EntryError(f"key '{prefix}min' or '{prefix}max' is needed; give at least one bound")
    if lo is not None and hi is not None and lo > hi:
        raise _EntryError(
            f"key '{prefix}min' ({lo:g}) is greater than '{prefix}max' ({hi:g}); swap them"
        )
    return lo, hi


def _range_rule(entry: Mapping[str, Any]) -> Rule:
    name, description, missing_ok = _common(entry)
    spec = entry["range"]
    if not isinstance(spec, Mapping):
        raise _EntryError(
            f"key 'range' must be a mapping like {{column: age, min: 0, max: 120}}; got "
            f"{_type(spec)}"
        )
    _check_keys(spec, _RANGE_KEYS, "'range'")
    column = spec.get("column")
    if not isinstance(column, str) or not column:
        raise _EntryError(f"key 'range.column' must name a column; got {_type(column)}")
    lo, hi = _bounds(spec, "range.")
    return Rule(
        name=name or f"range:{column}",
        when=(),
        then=Predicate(column, minimum=lo, maximum=hi),
        missing_ok=missing_ok,
        description=description,
        source="range",
    )


def _condition(column: Any, spec: Any, key: str) -> Predicate:
    if not isinstance(column, str) or not column:
        raise _EntryError(f"key '{key}' has a column name that is not text: {column!r}")
    where = f"'{key}.{column}'"
    if isinstance(spec, Mapping):
        for k in spec:
            if k not in _CONDITION_KEYS:
                raise _EntryError(
                    f"unknown key '{k}' in {where}; use min/max for a range or starts_with "
                    "for code prefixes"
                )
        if "starts_with" in spec:
            if len(spec) > 1:
                raise _EntryError(f"{where} mixes 'starts_with' with min/max; use one of them")
            pre = spec["starts_with"]
            pre_list = [pre] if isinstance(pre, (str, int)) else pre
            if not isinstance(pre_list, list) or not pre_list:
                raise _EntryError(f"{where}.starts_with must be a code or a list of codes")
            return Predicate(column, prefixes=tuple(str(p) for p in pre_list))
        lo, hi = _bounds(spec, f"{key}.{column}.")
        return Predicate(column, minimum=lo, maximum=hi)
    if isinstance(spec, list):
        if not spec:
            raise _EntryError(f"{where} is an empty list; list at least one value")
        if any(v is None or isinstance(v, (list, Mapping)) for v in spec):
            raise _EntryError(f"{where} must list plain values (text or numbers), not null/lists")
        return Predicate(column, values=tuple(spec))
    if spec is None:
        raise _EntryError(f"{where} has no value; write the value the column must have")
    return Predicate(column, values=(spec,))


def _implication_rules(entry: Mapping[str, Any]) -> list[Rule]:
    name, description, missing_ok = _common(entry)
    cond = entry.get("if", {})
    if not isinstance(cond, Mapping):
        raise _EntryError(
            f"key 'if' must be a mapping of column to value such as {{sex: male}}; got "
            f"{_type(cond)}"
        )
    if "then" not in entry:
        raise _EntryError("key 'then' is missing; say what must hold, e.g. then: {pregnant: 'no'}")
    then = entry["then"]
    if not isinstance(then, Mapping) or not then:
        raise _EntryError(
            f"key 'then' must be a non-empty mapping of column to value such as "
            f"{{pregnant: 'no'}}; got {_type(then)}"
        )
    when = tuple(_condition(c, v, "if") for c, v in cond.items())
    base = "implication:" + ("+".join(p.column for p in when) + "->" if when else "")
    rules = []
    for column, spec in then.items():
        pred = _condition(column, spec, "then")
        if name is None:
            rule_name = base + pred.column
        else:
            rule_name = name if len(then) == 1 else f"{name}:{pred.column}"
        rules.append(
            Rule(
                name=rule_name,
                when=when,
                then=pred,
                missing_ok=missing_ok,
                description=description,
                source="implication",
            )
        )
    return rules


def _icd_rules(spec: Any) -> list[Rule]:
    if not isinstance(spec, Mapping):
        raise _EntryError(
            f"key 'icd10cm' must be a mapping with at least 'code_column'; got {_type(spec)}"
        )
    _check_keys(spec, _ICD_KEYS, "'icd10cm'")
    kwargs: dict[str, Any] = {}
    for key in ("code_column", "sex_column", "age_column"):
        v = spec.get(key)
        if v is not None and (not isinstance(v, str) or not v):
            raise _EntryError(f"key 'icd10cm.{key}' must name a column; got {_type(v)}")
        kwargs[key] = v
    if kwargs["code_column"] is None:
        raise _EntryError("key 'icd10cm.code_column' is missing; name the column of codes")
    if kwargs["sex_column"] is None and kwargs["age_column"] is None:
        raise _EntryError("'icd10cm' needs 'sex_column' or 'age_column' (or both) to make any rule")
    for key in ("female", "male"):
        if key in spec:
            v = spec[key]
            vals = v if isinstance(v, list) else [v]
            if not vals or any(x is None or isinstance(x, (list, Mapping)) for x in vals):
                raise _EntryError(
                    f"key 'icd10cm.{key}' must be a value or a list of values of the sex column"
                )
            kwargs[key] = tuple(vals)
    if "maternal_age" in spec:
        v = spec["maternal_age"]
        if v is not None:
            if not isinstance(v, list) or len(v) != 2:
                raise _EntryError("key 'icd10cm.maternal_age' must be [min, max] or null")
            lo = _number(v[0], "icd10cm.maternal_age")
            hi = _number(v[1], "icd10cm.maternal_age")
            if lo is None or hi is None or lo > hi:
                raise _EntryError("key 'icd10cm.maternal_age' must be [min, max] with min <= max")
            v = (lo, hi)
        kwargs["maternal_age"] = v
    for key in ("newborn_max_age", "child_max_age", "adult_min_age"):
        if key in spec:
            kwargs[key] = _number(spec[key], f"icd10cm.{key}")
    return icd10cm_rules(**kwargs)
