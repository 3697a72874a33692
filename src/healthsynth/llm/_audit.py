"""The audit log: one JSON line per request, written before it is sent and after it returns.

Each line is written with a single ``write`` on a file opened for appending and then synced, so
a crash at any point leaves a log of whole lines: the ``sent`` line of a request whose process
died never gets its ``done`` line, which is exactly what an auditor needs to see.
"""

from __future__ import annotations

import json
import os
import threading
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from healthsynth.errors import DataFileError, ParameterError

__all__ = ["AuditLog", "read_audit_log"]


class AuditLog:
    """Append-only JSONL log of what was sent to a language-model endpoint.

    Parameters
    ----------
    path
        The log file; created (with its folder) on the first request, appended to afterwards.
    """

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self._lock = threading.Lock()

    def append(self, record: dict[str, Any]) -> None:
        """Write one record as a line, stamped with the time in UTC."""
        line = {"time": datetime.now(timezone.utc).isoformat(timespec="milliseconds"), **record}
        data = (json.dumps(line, sort_keys=True, default=str) + "\n").encode("utf-8")
        with self._lock:
            try:
                self.path.parent.mkdir(parents=True, exist_ok=True)
                fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
            except OSError as e:
                raise ParameterError(
                    f"cannot write the LLM audit log {self.path} ({e.strerror}); give a writable "
                    "path with --audit-log"
                ) from None
            try:
                os.write(fd, data)
                os.fsync(fd)
            finally:
                os.close(fd)


def read_audit_log(path: str | Path) -> list[dict[str, Any]]:
    """Read an audit log back as a list of records (a broken line is reported, not skipped)."""
    path = Path(path)
    out = []
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except FileNotFoundError:
        raise DataFileError(f"audit log {path} does not exist") from None
    for i, line in enumerate(lines, 1):
        try:
            out.append(json.loads(line))
        except json.JSONDecodeError:
            raise DataFileError(f"audit log {path} line {i} is not valid JSON") from None
    return out
