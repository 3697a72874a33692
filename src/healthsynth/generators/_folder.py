"""Model folders: writing them atomically and reading them back without running their code.

A model folder may come from anyone, so reading one runs nothing it holds: JSON is parsed,
weights are read as safetensors, a pickle is unpickled only when the caller says
``trust_pickle=True`` (:func:`pickle_refusal` words the refusal), a Hugging Face ``config.json``
with an ``auto_map`` is refused (:func:`check_no_remote_code`), and every name from the folder
that becomes a file name is checked to be a plain name (:func:`check_folder_names`).

Layout::

    MODEL_DIR/
      generator.json   which generator, its settings, its learned non-weight state (JSON)
      schema.json      the table schema
      training.json    the training record (time, memory, epochs, losses, seeds, versions)
      model/           the generator's own files (tabular-lm: a standard Hugging Face folder,
                       config.json + model.safetensors (+ tokenizer); the baselines: their state)
"""

from __future__ import annotations

import json
import os
import platform
import resource
import sys
from contextlib import AbstractContextManager
from pathlib import Path
from typing import Any

from healthsynth.data._io import atomic_folder as data_atomic_folder
from healthsynth.errors import ModelFolderError

__all__ = [
    "FORMAT",
    "atomic_folder",
    "check_folder_names",
    "check_no_remote_code",
    "jsonable",
    "load_any",
    "open_folder",
    "peak_rss_mb",
    "pickle_refusal",
    "read_json",
    "runtime_info",
    "write_common",
]

FORMAT = "healthsynth.generator"


def atomic_folder(path: str | Path) -> AbstractContextManager[Path]:
    """A temporary folder that replaces the model folder ``path`` on success.

    ``path`` must be absent, empty, or a folder healthsynth wrote (see
    :mod:`healthsynth.data._outputs`); anything else is refused and left untouched.
    """
    return data_atomic_folder(path, action="save the model", kind="model", error=ModelFolderError)


def read_json(path: Path, folder: Path) -> dict[str, Any]:
    """Read one JSON file of a model folder, with a clear error if it is missing or broken."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ModelFolderError(
            f"model folder {folder} is incomplete: {path.name} is missing; fit the model again"
        ) from None
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise ModelFolderError(
            f"model folder {folder} is corrupted: {path.name} is not valid JSON ({e})"
        ) from None
    except RecursionError:
        raise ModelFolderError(
            f"model folder {folder} is corrupted: {path.name} is nested too deeply to read"
        ) from None
    if not isinstance(data, dict):
        raise ModelFolderError(f"model folder {folder} is corrupted: {path.name} is not an object")
    return data


def check_folder(path: str | Path) -> tuple[Path, dict[str, Any]]:
    """Return the folder and its generator.json, or raise :class:`ModelFolderError`."""
    folder = Path(path)
    if not folder.exists():
        raise ModelFolderError(f"model folder {folder} does not exist; fit a model first")
    if not folder.is_dir():
        raise ModelFolderError(f"model folder {folder} is a file, not a folder")
    meta = read_json(folder / "generator.json", folder)
    if meta.get("format") != FORMAT:
        raise ModelFolderError(f"{folder} is not a healthsynth model folder (wrong format field)")
    return folder, meta


def write_common(
    folder: Path,
    *,
    name: str,
    format_version: int,
    params: dict[str, Any],
    schema: Any,
    training: dict[str, Any],
    extra: dict[str, Any] | None = None,
) -> None:
    """Write the parts every model folder shares (what :func:`open_folder` reads back).

    ``generator.json`` (format, generator name, settings and ``extra`` state), ``schema.json``
    and ``training.json``.
    """
    schema.save(folder / "schema.json")
    meta = {
        "format": FORMAT,
        "format_version": format_version,
        "generator": name,
        "params": params,
        **(extra or {}),
    }
    (folder / "generator.json").write_text(json.dumps(meta, indent=1), encoding="utf-8")
    (folder / "training.json").write_text(
        json.dumps(training, indent=1, default=str), encoding="utf-8"
    )


def open_folder(
    path: str | Path, *, name: str, format_version: int, param_names: list[str]
) -> tuple[Path, dict[str, Any], Any, dict[str, Any]]:
    """Check a model folder written for generator ``name`` and read its common parts.

    Returns the folder, its generator.json, the schema, and the saved constructor settings
    (only those in ``param_names``).
    """
    from healthsynth.data import Schema
    from healthsynth.errors import DataError

    folder, meta = check_folder(path)
    if meta.get("generator") != name:
        raise ModelFolderError(
            f"model folder {folder} holds a '{meta.get('generator')}' model, not {name}"
        )
    version = meta.get("format_version", 0)
    if isinstance(version, bool) or not isinstance(version, int) or version < 0:
        raise ModelFolderError(
            f"model folder {folder} is corrupted: generator.json's format_version {version!r} "
            "is not a whole number; fit the model again"
        )
    if version > format_version:
        raise ModelFolderError(
            f"model folder {folder} was written by a newer healthsynth (format version "
            f"{version}; this one reads up to {format_version}); upgrade to load it"
        )
    try:
        schema = Schema.load(folder / "schema.json")
    except DataError as e:
        raise ModelFolderError(f"model folder {folder} is corrupted: {e}") from None
    params = {k: v for k, v in meta.get("params", {}).items() if k in param_names}
    return folder, meta, schema, params


def load_any(path: str | Path, *, trust_pickle: bool = False) -> Any:
    """Load whichever generator a model folder holds (pickles only with ``trust_pickle``)."""
    from healthsynth.generators._registry import registry

    _, meta = check_folder(path)
    name = meta.get("generator")
    if isinstance(name, str) and name in registry.names():
        return registry.get(name).load(path, trust_pickle=trust_pickle)
    raise ModelFolderError(
        f"model folder {path} names an unknown generator {name!r}; known: "
        f"{', '.join(registry.names())}"
    )


def jsonable(obj: Any) -> Any:
    """``obj`` with numpy values, arrays and paths made JSON-ready; NaN and infinities -> None."""
    import math

    import numpy as np

    if isinstance(obj, dict):
        return {str(k): jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [jsonable(v) for v in obj]
    if isinstance(obj, np.ndarray):
        return jsonable(obj.tolist())
    if isinstance(obj, Path):
        return str(obj)
    if isinstance(obj, np.generic):
        obj = obj.item()
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    return obj


def peak_rss_mb() -> float:
    """Peak resident memory of this process so far, in MiB."""
    kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return round(kb / (1024 * 1024) if sys.platform == "darwin" else kb / 1024, 1)


def runtime_info() -> dict[str, Any]:
    """Versions of Python and the main libraries, and the machine."""
    from importlib.metadata import PackageNotFoundError, version

    info: dict[str, Any] = {"python": platform.python_version(), "platform": platform.platform()}
    for pkg in ("healthsynth", "torch", "transformers", "numpy", "pandas", "scikit-learn"):
        try:
            info[pkg] = version(pkg)
        except PackageNotFoundError:
            info[pkg] = None
    info["cpu_count"] = os.cpu_count()
    return info


# -- what a folder may not do -------------------------------------------------------------------
def pickle_refusal(folder: Path, *, generator: str, file: str) -> ModelFolderError:
    """The error for a pickled model folder loaded without ``trust_pickle=True``.

    Whether a folder holds a pickle is decided by the generator class the folder names, never
    by a flag inside the folder, which whoever wrote it controls.
    """
    return ModelFolderError(
        f"model folder {folder} holds a pickle ({file}, written by the '{generator}' generator) "
        "and unpickling runs whatever code the file carries, so it is not loaded by default; if "
        "you made this folder yourself or trust whoever did, load it with trust_pickle=True "
        "(--trust-pickle on the command line)"
    )


def check_no_remote_code(model_dir: Path, folder: Path) -> None:
    """Refuse a Hugging Face folder whose configs ask to import code (``auto_map``).

    ``transformers`` reads ``auto_map`` in ``config.json`` or ``tokenizer_config.json`` as the
    name of a Python module to import, which would run code from the folder; healthsynth's own
    models never carry one.
    """
    for name in ("config.json", "tokenizer_config.json", "processor_config.json"):
        p = model_dir / name
        if not p.is_file():
            continue
        key = _code_key(read_json(p, folder))
        if key is not None:
            raise ModelFolderError(
                f"model folder {folder} is refused: model/{name} has an '{key}' entry, which "
                "asks to import Python code from the folder, and healthsynth never runs code "
                "from a model folder; fit the model again or remove that entry"
            )


def _code_key(obj: Any) -> str | None:
    """The first key, at any depth, by which a config names code to import."""
    if isinstance(obj, dict):
        for k, v in obj.items():
            if k in ("auto_map", "custom_pipelines"):
                return str(k)
            found = _code_key(v)
            if found is not None:
                return found
    elif isinstance(obj, list):
        for v in obj:
            found = _code_key(v)
            if found is not None:
                return found
    return None


def check_folder_names(folder: Path, names: Any, *, what: str = "table name") -> None:
    """Refuse any of ``names`` (read from a model folder) that is not a plain file name."""
    from healthsynth.data import check_name

    if not isinstance(names, (list, tuple, dict)):
        raise ModelFolderError(f"model folder {folder} is corrupted: its {what}s are not a list")
    for n in names:
        check_name(n, what=what, where=f"in model folder {folder}", error=ModelFolderError)
