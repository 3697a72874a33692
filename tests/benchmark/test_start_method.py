"""How benchmark cells are started: fork only where a forked child cannot hang."""

from __future__ import annotations

import subprocess
import sys
import threading

import pytest

from healthsynth.benchmark._runner import _context


def test_cells_are_not_forked_from_a_process_with_threads():
    # a child forked while another thread holds a lock (a server thread, a polars pool) can
    # wait on it for ever: the full test suite once hung so
    stop = threading.Event()
    t = threading.Thread(target=stop.wait, daemon=True)
    t.start()
    try:
        assert _context().get_start_method() in ("forkserver", "spawn")
    finally:
        stop.set()
        t.join()


def start_method(before: str = "") -> str:
    code = f"{before}from healthsynth.benchmark._runner import _context; "
    code += "print(_context().get_start_method())"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return out.stdout.strip()


def test_a_plain_process_forks_and_one_with_polars_does_not():
    assert start_method() == "fork"
    pytest.importorskip("polars")
    assert start_method("import polars; ") in ("forkserver", "spawn")
