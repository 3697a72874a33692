"""Every exception healthsynth raises on purpose.

The tree::

    HealthsynthError                 base class; the CLI prints its message and exits with code 2
    ├── DataError                    a data file or DataFrame cannot be used as given
    │   ├── DataFileError            missing, empty, unreadable, not UTF-8, duplicate header names
    │   └── SchemaValidationError    values that break the schema; ``problems`` lists all of them
    ├── ParameterError               a setting has a wrong value (also subclasses ValueError)
    ├── ConditionError               an unknown column or value in ``conditions`` (also ValueError)
    ├── NotFittedError               a generator was used before ``fit`` or ``load``
    ├── ModelFolderError             a saved model folder is missing, incomplete or corrupted
    ├── MissingExtraError            an optional dependency is not installed; names the extra
    ├── EngineError                  the distributed engine (Ray) failed: an unreachable cluster,
    │                                workers that died or never started
    ├── DatabaseError                a database cannot be reached, refuses the login, lacks the
    │                                tables asked for, or already holds data where healthsynth
    │                                would write (messages never show the password)
    └── LLMError                     talking to a language-model endpoint went wrong
        ├── EndpointError            unreachable, timed out, refused the key or the model, or kept
        │                            failing after the retries
        ├── BudgetError              the token or money budget cannot pay for even one request
        └── RemotePHIError           real rows, or data derived from them, would go to an
                                     endpoint off this machine without ``allow_remote_phi``

    HealthsynthWarning (UserWarning) something the user should know that does not stop the run

Every message is one sentence that names the file, column, parameter or value at fault, what was
expected, and what to do.
"""

from __future__ import annotations

__all__ = [
    "BudgetError",
    "ConditionError",
    "DataError",
    "DatabaseError",
    "DataFileError",
    "EndpointError",
    "EngineError",
    "HealthsynthError",
    "HealthsynthWarning",
    "LLMError",
    "MissingExtraError",
    "ModelFolderError",
    "NotFittedError",
    "ParameterError",
    "RemotePHIError",
    "SchemaValidationError",
]


class HealthsynthError(Exception):
    """Base class of all errors raised on purpose by healthsynth."""


class HealthsynthWarning(UserWarning):
    """Something the user should know about, that does not stop the run."""


class DataError(HealthsynthError, ValueError):
    """The data cannot be used as given."""


class DataFileError(DataError):
    """A data file is missing, empty or unreadable."""


class SchemaValidationError(DataError):
    """Data break the schema.

    Parameters
    ----------
    problems
        Every problem found, one sentence each.
    """

    def __init__(self, problems: list[str], *, what: str = "the data") -> None:
        self.problems = list(problems)
        head = f"{what} does not match the schema ({len(self.problems)} problem"
        head += "s): " if len(self.problems) != 1 else "): "
        super().__init__(head + "; ".join(self.problems))


class ParameterError(HealthsynthError, ValueError):
    """A parameter has a value outside what it accepts."""


class ConditionError(HealthsynthError, ValueError):
    """A sampling condition names an unknown column or value."""


class NotFittedError(HealthsynthError, RuntimeError):
    """A generator was used before it was fitted or loaded."""


class ModelFolderError(HealthsynthError):
    """A saved model folder is missing, incomplete or corrupted."""


class MissingExtraError(HealthsynthError, ImportError):
    """An optional dependency is missing."""

    def __init__(self, package: str, extra: str, purpose: str) -> None:
        super().__init__(
            f"{purpose} needs the package '{package}', which is not installed; "
            f"install it with: pip install 'healthsynth[{extra}]'"
        )


class EngineError(HealthsynthError, RuntimeError):
    """The distributed engine failed: unreachable cluster, dead or missing workers."""


class DatabaseError(HealthsynthError):
    """A database cannot be reached or used as asked; the message hides the password."""


class LLMError(HealthsynthError):
    """Talking to a language-model endpoint went wrong."""


class EndpointError(LLMError):
    """The endpoint is unreachable, timed out, refused the key or model, or kept failing."""


class BudgetError(LLMError):
    """The token or money budget cannot pay for even one request."""


class RemotePHIError(LLMError):
    """Real rows, or data derived from them, would go off this machine without permission."""
