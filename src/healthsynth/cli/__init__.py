"""The ``healthsynth`` command line: a thin layer over the Python API, one module per command.

``fit``, ``sample``, ``evaluate``, ``audit``, ``notes``, ``demo``, ``benchmark`` and
``datasets``; what they share (the application, plain-text output, one-line user errors) is in
:mod:`._app`.
"""

from __future__ import annotations

import sys

from healthsynth.cli import (  # noqa: F401 - each module adds its command
    audit,
    benchmark,
    datasets,
    demo,
    evaluate,
    fit,
    notes,
    prior,
    sample,
)
from healthsynth.cli._app import app, err, out

__all__ = ["app", "main"]


def main() -> None:
    """Entry point of the ``healthsynth`` script.

    A mistyped command line (an unknown flag, ``-n 1e20``) is one ``error:`` line naming the
    command's ``--help`` and exit code 2, like every other user error.
    """
    from typer.exceptions import TyperException

    try:
        code = app(standalone_mode=False)
    except TyperException as e:
        # a command-line mistake (unknown flag, a value of the wrong type), or no arguments
        status = getattr(e, "exit_code", 2)
        text = e.format_message() if hasattr(e, "format_message") else str(e)
        ctx = getattr(e, "ctx", None)
        if text.lstrip().startswith("Usage:"):  # no arguments: the help, as before
            out.print(text)
            sys.exit(status)
        where = ctx.command_path if ctx is not None else "healthsynth"
        err.print(f"error: {' '.join(text.split())} (see '{where} --help')", soft_wrap=True)
        sys.exit(status)
    except KeyboardInterrupt:
        err.print("interrupted")
        sys.exit(130)
    sys.exit(code if isinstance(code, int) else 0)
