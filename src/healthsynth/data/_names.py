"""Plain names: the only strings from data, model folders or flags that may become file names.

A table name becomes ``NAME.csv`` in an output folder, a benchmark label becomes a folder, and
both can come from a file someone else wrote (a model folder's ``generator.json``, a benchmark
config) or from a flag. :func:`check_name` is the one gate they all pass: a plain name is ASCII
letters, digits and ``_ . + -``, starts with a letter, digit or ``_``, holds no ``..``, does not
end in a dot, is at most :data:`MAX_NAME_LENGTH` characters long and is not a name Windows
reserves for a device (``CON``, ``NUL``, ``COM1`` ..., also with a suffix such as ``NUL.csv``).
So a plain name can never be a path: it has no separator, is never ``.`` or ``..``, never
absolute, and names one entry of the folder it is joined to on every platform.
"""

from __future__ import annotations

import re
from typing import Any

from healthsynth.errors import DataError, HealthsynthError

__all__ = ["MAX_NAME_LENGTH", "check_name", "is_plain_name"]

#: The longest plain name (a table name plus a suffix stays far below file-system limits).
MAX_NAME_LENGTH = 100

_PLAIN = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.+-]*")
_DEVICES = frozenset(
    ["con", "prn", "aux", "nul"] + [f"{p}{i}" for p in ("com", "lpt") for i in range(10)]
)

_RULE = (
    "use only letters, digits and _ . + - (starting with a letter, digit or _, no '..', "
    f"at most {MAX_NAME_LENGTH} characters)"
)


def is_plain_name(name: Any) -> bool:
    """Whether ``name`` is a plain name (see the module docstring)."""
    return _problem(name) is None


def check_name(
    name: Any,
    *,
    what: str = "name",
    where: str = "",
    error: type[HealthsynthError] = DataError,
) -> str:
    """Return ``name`` if it is a plain name, else raise ``error`` in one sentence.

    Parameters
    ----------
    name
        The candidate (any value: a non-string is refused too).
    what
        What the name is, for the message (``"table name"``, ``"benchmark label"``).
    where
        Where it came from, for the message (``"in model folder m/"``, ``"in --table"``).
    error
        The :class:`~healthsynth.errors.HealthsynthError` subclass to raise.

    Returns
    -------
    str
        ``name`` unchanged.
    """
    problem = _problem(name)
    if problem is None:
        return str(name)
    at = f" {where}" if where else ""
    shown = repr(name[:120] if isinstance(name, str) else name)  # escapes control characters
    raise error(f"{what} {shown}{at} {problem}; {_RULE}")


def _problem(name: Any) -> str | None:
    if not isinstance(name, str):
        return f"is a {type(name).__name__}, not text"
    if not name:
        return "is empty"
    if len(name) > MAX_NAME_LENGTH:
        return f"is {len(name)} characters long"
    if not _PLAIN.fullmatch(name):
        if "/" in name or "\\" in name:
            return "holds a path separator, so it could point outside its folder"
        return "is not a plain file name"
    if ".." in name:
        return "holds '..'"
    if name.endswith("."):
        return "ends in a dot"
    if name.split(".")[0].lower() in _DEVICES:
        return "is a device name reserved by Windows"
    return None
