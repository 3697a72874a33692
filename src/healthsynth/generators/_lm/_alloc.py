"""glibc's allocator, told to keep freed memory for reuse while sampling.

A decoding step allocates and frees many temporaries of a few hundred kilobytes (a chunk's
activations). With glibc's defaults, every free that leaves enough room at the top of a thread's
heap hands the pages back to the kernel (``madvise``), and the next step faults them in again,
zeroed: on the 19-column pbc model this kernel work took a third of the sampling time (sampling
20,000 rows: 14.5 s with the defaults, 8.9 s with the settings below; see
``docs/benchmark-results/engine.md``). So the first decoder of a process raises the two
thresholds once:

* ``M_MMAP_THRESHOLD`` 64 MiB: blocks below it come from the heap, not from fresh mappings;
* ``M_TRIM_THRESHOLD`` 256 MiB: at most that much freed memory is kept for reuse instead of
  being returned.

The process keeps up to 256 MiB of freed memory it would otherwise return; nothing else
changes. Other C libraries are left alone, and ``HEALTHSYNTH_MALLOC_TUNING=0`` leaves glibc alone
too.
"""

from __future__ import annotations

import ctypes
import os
import sys

__all__ = ["keep_freed_memory", "release_freed_memory"]

M_TRIM_THRESHOLD, M_MMAP_THRESHOLD = -1, -3  # mallopt parameters (glibc's malloc.h)
MMAP_THRESHOLD = 64 << 20
TRIM_THRESHOLD = 256 << 20

_state: dict[str, bool] = {}


def _glibc() -> bool:
    try:
        return sys.platform.startswith("linux") and bool(os.confstr("CS_GNU_LIBC_VERSION"))
    except (ValueError, OSError):
        return False


def keep_freed_memory() -> bool:
    """Raise glibc's mmap and trim thresholds once per process; whether they are raised."""
    if "done" in _state:
        return _state["done"]
    done = False
    if os.environ.get("HEALTHSYNTH_MALLOC_TUNING", "1").strip() != "0" and _glibc():
        try:
            mallopt = ctypes.CDLL(None).mallopt
        except (OSError, AttributeError):
            mallopt = None
        if mallopt is not None:
            mallopt.argtypes, mallopt.restype = [ctypes.c_int, ctypes.c_int], ctypes.c_int
            done = mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD) == 1
            done = mallopt(M_TRIM_THRESHOLD, TRIM_THRESHOLD) == 1 and done
    _state["done"] = done
    return done


def release_freed_memory() -> bool:
    """Hand the heap's free pages back to the kernel (glibc's ``malloc_trim``); whether it did.

    Training leaves much of its heap free but resident (many block sizes come and go); a fit
    calls this before it samples, so the sampler's buffers reuse those pages instead of adding
    to them.
    """
    if not _glibc():
        return False
    try:
        trim = ctypes.CDLL(None).malloc_trim
    except (OSError, AttributeError):
        return False
    trim.argtypes, trim.restype = [ctypes.c_size_t], ctypes.c_int
    return trim(0) == 1
