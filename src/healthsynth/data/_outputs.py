"""Writing outputs without ever losing a user's files.

The rules, in one place:

* **Atomic.** A file or folder appears only when complete: it is written to a temporary path
  next to it and renamed into place.
* **Ownership.** Every folder healthsynth writes (model folders, timeline samples, exports,
  reports, the demo) holds a manifest, ``.healthsynth-manifest.json``, naming its kind and each
  file in it. An existing folder is replaced only when it is empty or when its manifest
  accounts for every entry in it and names the same kind; a folder holding anything else (a
  user's file, a link, an older folder without a manifest) is refused with one sentence, and
  nothing in it is touched. An existing *file* is replaced
  only when healthsynth's run record beside it (``NAME.run.json``) says healthsynth wrote it, or
  when the user asks (``overwrite=True``); a protected file (an input of the run, a file inside
  a model folder) is never replaced.
* **One writer at a time.** Writing to a path holds an exclusive lock (``.NAME.healthsynth-lock``
  next to it); a second writer is refused at once with one sentence, before it does any work.
* **No leftovers.** Temporary names carry the writing process's ID
  (``.NAME.PID.RANDOM.healthsynth-tmp``); the next writer to the same name removes those whose
  process is gone (a killed run), and puts back a folder that a kill left half-swapped.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import re
import secrets
import shutil
import threading
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from healthsynth.errors import ParameterError

__all__ = [
    "MANIFEST",
    "add_to_manifest",
    "atomic_folder",
    "atomic_path",
    "check_output_file",
    "check_output_folder",
    "file_identity",
    "output_lock",
    "protected_files",
    "read_manifest",
    "record_inputs",
]

MANIFEST = ".healthsynth-manifest.json"
_MANIFEST_FORMAT = "healthsynth.outputs"
_TMP = ".healthsynth-tmp"
_OLD = ".healthsynth-old"
_LOCK = ".healthsynth-lock"
_STALE = re.compile(
    r"^\.(?P<name>.+)\.(?P<pid>\d+)\.[0-9a-f]{8}(?P<kind>\.healthsynth-(?:tmp|old))$"
)

_held: dict[str, int] = {}  # lock path -> how many times this process holds it
_held_guard = threading.Lock()


# -- locks ------------------------------------------------------------------------------------
@contextmanager
def output_lock(path: str | Path, *, error: type[Exception] = ParameterError) -> Iterator[None]:
    """Hold the exclusive writer's lock of ``path`` (re-entrant within a process).

    A second process that asks for the same path is refused at once with ``error``.
    """
    path = Path(path)
    created = _make_parents(path.parent)
    lock = path.parent / f".{path.name}{_LOCK}"
    key = str(lock.resolve())
    with _held_guard:
        if _held.get(key):
            _held[key] += 1
            nested = True
        else:
            nested = False
    if nested:
        try:
            yield
        finally:
            with _held_guard:
                _held[key] -= 1
        return
    try:
        fd = _acquire(lock, path, error)
    except BaseException:
        _remove_empty(created)
        raise
    with _held_guard:
        _held[key] = 1
    try:
        yield
    finally:
        with _held_guard:
            _held.pop(key, None)
        with contextlib.suppress(FileNotFoundError):
            lock.unlink()
        os.close(fd)
        _remove_empty(created)


def _make_parents(folder: Path) -> list[Path]:
    """Create ``folder`` and its missing parents; return those created, deepest first."""
    missing = []
    p = folder
    while not p.exists():
        missing.append(p)
        p = p.parent
    folder.mkdir(parents=True, exist_ok=True)
    return missing


def _remove_empty(folders: list[Path]) -> None:
    """Remove the folders a refused or failed write created, if they stayed empty."""
    for f in folders:
        try:
            f.rmdir()
        except OSError:
            return


def _acquire(lock: Path, path: Path, error: type[Exception]) -> int:
    while True:
        fd = os.open(lock, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            raise error(
                f"another healthsynth run is writing to {path} right now; wait for it to finish "
                "or choose another output"
            ) from None
        # the holder before us may have removed the lock file as it released it: then our lock
        # is on a file nobody else will open, so take a fresh one
        try:
            same = os.path.samestat(os.fstat(fd), os.stat(lock))
        except FileNotFoundError:
            same = False
        if same:
            return fd
        os.close(fd)


# -- temporaries ------------------------------------------------------------------------------
def _temp_name(path: Path, kind: str) -> Path:
    return path.parent / f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}{kind}"


def pid_alive(pid: int) -> bool:
    """Whether process ``pid`` may still run (another user's counts as running)."""
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _clean_stale(path: Path) -> None:
    """Remove what killed runs left next to ``path``; restore a folder left half-swapped."""
    if not path.parent.is_dir():
        return
    for entry in path.parent.iterdir():
        m = _STALE.match(entry.name)
        if m is None or m["name"] != path.name or pid_alive(int(m["pid"])):
            continue
        if m["kind"] == _OLD and not path.exists() and not path.is_symlink():
            os.replace(entry, path)  # killed between the two renames of a swap: put it back
        elif entry.is_dir() and not entry.is_symlink():
            shutil.rmtree(entry, ignore_errors=True)
        else:
            with contextlib.suppress(FileNotFoundError):
                entry.unlink()


# -- ownership --------------------------------------------------------------------------------
def read_manifest(folder: Path) -> dict[str, Any] | None:
    """The folder's manifest, or None when it has none (or an unreadable one)."""
    try:
        data = json.loads((folder / MANIFEST).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if not isinstance(data, dict) or data.get("format") != _MANIFEST_FORMAT:
        return None
    if not isinstance(data.get("files"), dict):
        return None
    return data


def _listing(folder: Path) -> dict[str, int | None]:
    """Every entry under ``folder`` (files with their sizes; links and others as None)."""
    found: dict[str, int | None] = {}
    for root, dirs, files in os.walk(folder, followlinks=False):
        base = Path(root)
        for d in list(dirs):
            p = base / d
            if p.is_symlink():
                found[p.relative_to(folder).as_posix()] = None
                dirs.remove(d)
        for f in files:
            p = base / f
            rel = p.relative_to(folder).as_posix()
            found[rel] = p.stat().st_size if p.is_file() and not p.is_symlink() else None
    found.pop(MANIFEST, None)
    return found


def _foreign_entry(folder: Path) -> str | None:
    """The first entry of ``folder`` that its manifest does not account for, or None."""
    entries = _listing(folder)
    if not entries and not any(folder.iterdir()):
        return None
    manifest = read_manifest(folder)
    if manifest is None:
        return next(iter(sorted(entries)), MANIFEST) if entries else None
    recorded = manifest["files"]
    for name, size in sorted(entries.items()):
        if name not in recorded or size is None:  # not written by healthsynth, or a link
            return name
    return None


def check_output_folder(
    path: str | Path,
    *,
    action: str,
    protected: Iterable[str | Path | dict[str, Any]] = (),
    kind: str | None = None,
    error: type[Exception] = ParameterError,
) -> Path:
    """Raise ``error`` unless ``path`` may be written as an output folder.

    It may when it is absent, empty, or a folder healthsynth wrote (of the same ``kind``, when
    one is given) and nobody changed since, and holds none of the ``protected`` files (see
    :func:`check_output_file`).
    """
    path = Path(path)
    if path.is_symlink() or (path.exists() and not path.is_dir()):
        raise error(f"cannot {action} to {path}: it is a file, not a folder; choose a folder name")
    if path.is_dir():
        protected = list(protected)
        if protected:
            for f in path.rglob("*"):
                if f.is_file() and _is_protected(f, protected):
                    raise error(
                        f"cannot {action} to {path}: it holds {f.name}, an input of this model "
                        "or run, which healthsynth never overwrites; choose another folder"
                    )
        manifest = read_manifest(path)
        if kind is not None and manifest is not None and manifest.get("kind") != kind:
            raise error(
                f"cannot {action} to {path}: it holds a healthsynth {manifest.get('kind')}, not a "
                f"{kind}; choose a new or empty folder (nothing was changed)"
            )
        foreign = _foreign_entry(path)
        if foreign is not None:
            raise error(
                f"cannot {action} to {path}: the folder holds '{foreign}', which healthsynth did "
                "not write; choose a new or empty folder (nothing was changed)"
            )
    return path


def _write_manifest(folder: Path, kind: str, inputs: Iterable[str | Path]) -> None:
    files = {k: v for k, v in _listing(folder).items() if v is not None}
    manifest = {
        "format": _MANIFEST_FORMAT,
        "kind": kind,
        "files": files,
        "inputs": [file_identity(p) for p in inputs if Path(p).is_file()],
    }
    (folder / MANIFEST).write_text(json.dumps(manifest, indent=1), encoding="utf-8")


def file_identity(path: str | Path) -> dict[str, Any]:
    """What recognises a file again without storing its path: device, inode, path hash."""
    p = Path(path).resolve()
    st = p.stat()
    return {
        "device": st.st_dev,
        "inode": st.st_ino,
        "path_sha256": hashlib.sha256(str(p).encode("utf-8", "surrogateescape")).hexdigest(),
    }


def record_inputs(folder: str | Path, inputs: Iterable[str | Path]) -> None:
    """Add the identities of the files ``folder`` was made from to its manifest.

    Later runs never write over those files (see :func:`check_output_file`).
    """
    folder = Path(folder)
    manifest = read_manifest(folder)
    if manifest is None:
        raise ParameterError(f"{folder} is not a folder healthsynth wrote (it has no manifest)")
    known = {(i.get("device"), i.get("inode")) for i in manifest.get("inputs", [])}
    for p in inputs:
        if Path(p).is_file():
            ident = file_identity(p)
            if (ident["device"], ident["inode"]) not in known:
                manifest.setdefault("inputs", []).append(ident)
    with atomic_path(folder / MANIFEST) as tmp:
        tmp.write_text(json.dumps(manifest, indent=1), encoding="utf-8")


def add_to_manifest(folder: str | Path, files: Iterable[str | Path]) -> None:
    """Record in ``folder``'s manifest files healthsynth has just added to it (a run record)."""
    folder = Path(folder)
    manifest = read_manifest(folder)
    if manifest is None:
        raise ParameterError(f"{folder} is not a folder healthsynth wrote (it has no manifest)")
    for f in files:
        p = Path(f)
        manifest["files"][p.relative_to(folder).as_posix()] = p.stat().st_size
    with atomic_path(folder / MANIFEST) as tmp:
        tmp.write_text(json.dumps(manifest, indent=1), encoding="utf-8")


def protected_files(folder: str | Path) -> list[Path | dict[str, Any]]:
    """What a run reading the model or data folder ``folder`` must never write over.

    Every file in the folder, and the files it was made from (its manifest's inputs).
    """
    folder = Path(folder)
    found: list[Path | dict[str, Any]] = [p for p in folder.rglob("*") if p.is_file()]
    manifest = read_manifest(folder)
    if manifest is not None:
        found += [i for i in manifest.get("inputs", []) if isinstance(i, dict)]
    return found


def _same_file(path: Path, identity: dict[str, Any]) -> bool:
    try:
        st = path.resolve().stat()
    except OSError:
        return False
    return st.st_dev == identity.get("device") and st.st_ino == identity.get("inode")


def check_output_file(
    path: str | Path,
    *,
    action: str,
    protected: Iterable[str | Path | dict[str, Any]] = (),
    overwrite: bool = False,
    error: type[Exception] = ParameterError,
) -> Path:
    """Raise ``error`` unless the file ``path`` may be written.

    ``protected`` files (paths, or identities from :func:`file_identity`) are never replaced;
    another existing file only when healthsynth's run record beside it (``NAME.run.json``)
    names it, or with ``overwrite``.
    """
    path = Path(path)
    if path.is_dir():
        raise error(f"cannot {action} to {path}: it is a folder; give a file name")
    owner = read_manifest(path.parent)
    if owner is not None:
        raise error(
            f"cannot {action} to {path}: its folder is a healthsynth {owner.get('kind')}, which "
            "is written and replaced whole; write the file somewhere else"
        )
    if _is_protected(path, protected):
        raise error(
            f"cannot {action} to {path}: it is an input of this model or run (the real data "
            "or a model file), which healthsynth never overwrites; choose another file name"
        )
    if path.exists() and not overwrite and not _ours(path):
        raise error(
            f"cannot {action} to {path}: the file exists and healthsynth did not write it; "
            "choose another file name, or pass --overwrite to replace it"
        )
    return path


def _is_protected(path: Path, protected: Iterable[str | Path | dict[str, Any]]) -> bool:
    if not path.exists():
        return False
    for p in protected:
        if isinstance(p, dict):
            if _same_file(path, p):
                return True
        elif Path(p).exists() and os.path.samefile(path, p):
            return True
    return False


def _ours(path: Path) -> bool:
    """Whether healthsynth's run record beside ``path`` says healthsynth wrote it."""
    try:
        run = json.loads(path.with_name(path.name + ".run.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    return (
        isinstance(run, dict)
        and Path(str(run.get("output", ""))).name == path.name
        and run.get("output_bytes") in (None, path.stat().st_size)
    )


# -- atomic writes ----------------------------------------------------------------------------
@contextmanager
def atomic_path(path: str | Path) -> Iterator[Path]:
    """Yield a temporary path next to ``path``; rename it to ``path`` only on success.

    Holds the writer's lock of ``path`` throughout and first removes what killed runs left.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with output_lock(path):
        _clean_stale(path)
        tmp = _temp_name(path, _TMP)
        try:
            yield tmp
            if tmp.exists():
                # give the file the permissions a plain open() would (not a temp file's 0600)
                os.chmod(tmp, 0o666 & ~current_umask())
            os.replace(tmp, path)
        finally:
            if tmp.is_dir():
                shutil.rmtree(tmp, ignore_errors=True)
            elif tmp.exists():
                tmp.unlink()


@contextmanager
def atomic_folder(
    path: str | Path,
    *,
    action: str,
    kind: str,
    inputs: Iterable[str | Path] = (),
    protected: Iterable[str | Path | dict[str, Any]] = (),
    error: type[Exception] = ParameterError,
) -> Iterator[Path]:
    """Yield a temporary folder that replaces ``path`` only on success.

    ``path`` must be absent, empty, or a folder healthsynth wrote (see
    :func:`check_output_folder`) holding none of the ``protected`` files; on success the new
    folder gets a manifest of what it holds (and the identities of ``inputs``, the files it was
    made from, so they are never written over by a later run).
    """
    path = Path(path)
    with output_lock(path, error=error):
        _clean_stale(path)
        check_output_folder(path, action=action, protected=protected, kind=kind, error=error)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = _temp_name(path, _TMP)
        tmp.mkdir()
        try:
            yield tmp
            _write_manifest(tmp, kind, inputs)
            os.chmod(tmp, 0o777 & ~current_umask())
            if path.exists():
                old = _temp_name(path, _OLD)
                os.replace(path, old)
                os.replace(tmp, path)
                shutil.rmtree(old, ignore_errors=True)
            else:
                os.replace(tmp, path)
        finally:
            if tmp.exists():
                shutil.rmtree(tmp, ignore_errors=True)


def current_umask() -> int:
    """The process's file-creation mask (read by setting it and putting it back)."""
    mask = os.umask(0o022)
    os.umask(mask)
    return mask
