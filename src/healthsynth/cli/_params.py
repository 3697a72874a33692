"""From command-line flags to a generator's settings: one table, checked against the generator.

A flag of ``fit`` that sets a generator setting has the setting's name as its Python parameter
name (``--llm-model`` sets ``llm_model``); the flag is checked against the generator's own list
of settings, so a flag the chosen generator does not take is refused with one sentence instead
of being ignored.
"""

from __future__ import annotations

import inspect
from pathlib import Path
from typing import Any

from healthsynth.errors import ParameterError

__all__ = ["flag_of", "generator_params", "setting_names"]

#: Settings whose flag is not the setting's name.
_FLAGS = {"column_descriptions": "--describe", "domains": "--range"}


def flag_of(param: str) -> str:
    """The command-line flag that sets the generator setting ``param``."""
    return _FLAGS.get(param, "--" + param.replace("_", "-"))


def setting_names(cls: type) -> list[str]:
    """The keyword settings of a generator class (its ``__init__`` parameters)."""
    return [p for p in inspect.signature(cls.__init__).parameters if p != "self"]


def generator_params(name: str, cls: type, given: dict[str, Any]) -> dict[str, Any]:
    """The settings for generator ``name`` from the flags the user ``given`` (None: not given).

    Raises :class:`ParameterError` naming the first flag the generator does not take.
    """
    accepted = set(setting_names(cls))
    params: dict[str, Any] = {}
    for param, value in given.items():
        if value is None:
            continue
        if param not in accepted:
            raise ParameterError(f"generator '{name}' does not take {flag_of(param)}; leave it out")
        params[param] = str(value) if isinstance(value, Path) else value
    return params
