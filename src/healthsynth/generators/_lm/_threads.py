"""How many torch threads a fit or a sample uses, chosen for the work and the machine's load.

Two torch threads on a 2-core machine next to one other busy process are many times slower
than one: each parallel operation waits for the thread the scheduler has set aside. So:

1. the ``threads`` setting, then ``HEALTHSYNTH_THREADS``, then ``OMP_NUM_THREADS`` decide when
   given (the user knows best);
2. otherwise a small workload (a tiny model, or few tokens per step) gets one thread: splitting
   it costs more than it saves;
3. otherwise the threads are the idle cores: the cores torch would use, less the other
   processes running now (``/proc/loadavg``'s count of runnable tasks less this process's
   own, the least of a few readings; else the one-minute load average), at least one;
4. while training, :class:`ThreadControl` watches this process's CPU time: when its threads
   get less than three quarters of their cores (another process took them), it drops to one
   thread; once the other processes have used less than a quarter of a core for
   ``recheck`` seconds (the machine's busy time less this process's, ``/proc/stat``), it goes
   back to the threads it started with.

Sampling runs on numpy, whose matrix products use the BLAS library's threads: the same choice
is applied to them (and to torch's, when torch is loaded) by :func:`compute_threads`. The
choice is set for the duration of a ``with`` block and the previous value restored afterwards;
importing this module changes nothing.
"""

from __future__ import annotations

import math
import os
import sys
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from typing import Any, NamedTuple

from healthsynth.errors import ParameterError

__all__ = ["ThreadChoice", "ThreadControl", "choose_threads", "compute_threads", "torch_threads"]

#: Below this many multiply-adds per optimizer step (weights × tokens), one thread is as fast.
SMALL_WORK = 2e8
#: A CPU share below this (CPU seconds ÷ wall seconds ÷ threads) means the cores are shared.
CONTENDED_SHARE = 0.75
#: Other processes using less than this many cores (on average, over a recheck) are idle.
IDLE_OTHERS = 0.25
#: Readings of the runnable tasks (the least counts) and the seconds between two of them.
LOAD_READINGS, LOAD_GAP = 5, 0.004


def _env_threads(name: str) -> int | None:
    raw = os.environ.get(name)
    if raw is None or raw.strip() == "":
        return None
    try:
        value = int(raw)
    except ValueError:
        value = 0
    if value < 1:
        raise ParameterError(
            f"the environment variable {name} must be a positive whole number of threads; "
            f"got {raw!r}"
        )
    return value


def _runnable_now() -> int:
    """Runnable tasks of other processes at this instant (Linux; raises OSError elsewhere).

    ``/proc/loadavg`` counts every runnable thread on the machine, this process's own
    included (the calling thread, and a BLAS or decoding thread that is still finishing), so
    this process's runnable threads are subtracted.
    """
    with open("/proc/loadavg", encoding="ascii") as fh:
        running = int(fh.read().split()[3].split("/")[0])
    own = 0
    for task in os.scandir("/proc/self/task"):
        try:
            with open(f"{task.path}/stat", encoding="ascii") as fh:
                stat = fh.read()
        except OSError:  # the thread ended meanwhile
            continue
        own += stat[stat.rindex(")") + 2] == "R"  # the state follows the name in brackets
    return max(running - max(own, 1), 0)


def _others_running() -> float:
    """Other processes running now, as the least of :data:`LOAD_READINGS` readings.

    One reading is a snapshot: on a quiet 2-core machine 1–4 % of readings found a short-lived
    task (a kernel worker, a shell) runnable, and a whole sample on one thread instead of two
    would follow from it. A busy process is runnable in every reading, so the least of a few
    readings a few milliseconds apart sees it and ignores the passers-by. Off Linux: the
    one-minute load average.
    """
    try:
        least = _runnable_now()
        for _ in range(LOAD_READINGS - 1):
            if least == 0:
                break
            time.sleep(LOAD_GAP)
            least = min(least, _runnable_now())
        return float(least)
    except (OSError, ValueError, IndexError):
        try:
            return float(os.getloadavg()[0])
        except OSError:
            return 0.0


def _busy_seconds() -> float | None:
    """CPU seconds the whole machine has been busy since boot (Linux's ``/proc/stat``)."""
    try:
        with open("/proc/stat", encoding="ascii") as fh:
            fields = fh.readline().split()
        user, nice, system, _idle, _iowait, irq, softirq, steal = map(int, fields[1:9])
        return (user + nice + system + irq + softirq + steal) / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, IndexError):
        return None


class ThreadChoice(NamedTuple):
    """How many torch threads, why, and whether the user fixed the number."""

    n: int
    reason: str
    fixed: bool


def _cores() -> int:
    """The cores this process may run on (torch's own count when torch is loaded)."""
    if "torch" in sys.modules:
        return int(sys.modules["torch"].get_num_threads())
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def choose_threads(*, requested: int | None, work: float | None = None) -> ThreadChoice:
    """The number of threads to use, and why (imports nothing heavy).

    Parameters
    ----------
    requested
        The ``threads`` setting (``None``: choose).
    work
        Multiply-adds per step (weights × tokens per batch); ``None`` when unknown.
    """
    if requested is not None:
        return ThreadChoice(int(requested), "the threads setting", True)
    for var in ("HEALTHSYNTH_THREADS", "OMP_NUM_THREADS"):
        value = _env_threads(var)
        if value is not None:
            return ThreadChoice(value, f"{var}={value}", True)
    cores = _cores()
    if cores <= 1:
        return ThreadChoice(1, "one core", False)
    if work is not None and work < SMALL_WORK:
        return ThreadChoice(1, f"small workload ({work:.1e} multiply-adds per step)", False)
    others = _others_running()
    free = int(math.floor((os.cpu_count() or cores) - others + 0.25))
    if free < cores:
        n = max(1, min(cores, free))
        why = f"{others:.0f} other process(es) running on {os.cpu_count()} cores"
        return ThreadChoice(n, why, False)
    return ThreadChoice(cores, f"idle machine: all {cores} cores", False)


@contextmanager
def torch_threads(n: int) -> Iterator[None]:
    """Use ``n`` torch threads inside the block; restore the previous number afterwards."""
    import torch

    before = torch.get_num_threads()
    if n != before:
        torch.set_num_threads(n)
    try:
        yield
    finally:
        if torch.get_num_threads() != before:
            torch.set_num_threads(before)


@contextmanager
def compute_threads(n: int) -> Iterator[None]:
    """Use ``n`` threads for numpy's BLAS (and torch, when loaded) inside the block."""
    with ExitStack() as stack:
        if "torch" in sys.modules:
            stack.enter_context(torch_threads(n))
        try:
            from threadpoolctl import threadpool_limits
        except ImportError:  # scikit-learn brings it; without it BLAS keeps its default
            pass
        else:
            stack.enter_context(threadpool_limits(limits=n, user_api="blas"))
        yield


class ThreadControl:
    """Drop to one torch thread when this process's threads do not get their cores.

    A training hook (see :class:`._train.TrainHook`; this module stays free of torch).

    Every ``interval`` seconds of training it compares the process's CPU time with wall time ×
    threads; a share below :data:`CONTENDED_SHARE` means another process is running on these
    cores. After a drop, every ``recheck`` seconds it measures the other processes' CPU time
    (the machine's busy time less this process's); below :data:`IDLE_OTHERS` cores, the
    threads go back up, so that a short burst of other work does not slow the rest of a long
    fit. Only chosen thread counts adapt; a number the user set is kept.
    """

    def __init__(
        self, choice: ThreadChoice, *, interval: float = 2.0, recheck: float = 10.0
    ) -> None:
        self.threads, self.reason, self.adapt = choice.n, choice.reason, not choice.fixed
        self.initial, self.interval, self.recheck = choice.n, interval, recheck
        self.changes: list[dict[str, Any]] = []
        self._mark = (time.perf_counter(), time.process_time())
        self._idle_mark: tuple[float, float, float] | None = None

    def on_start(self, epochs: int) -> None:
        """Start measuring."""
        self._mark = (time.perf_counter(), time.process_time())

    def _set(self, step: int, n: int, why: str) -> None:
        import torch

        torch.set_num_threads(n)
        self.changes.append({"step": step, "threads": n, "why": why})
        self.threads = n

    def _maybe_back_up(self, step: int) -> None:
        """After a drop: the starting threads again once the others have been idle a while."""
        busy = _busy_seconds()
        if busy is None:
            return
        wall, cpu = time.perf_counter(), time.process_time()
        if self._idle_mark is None:
            self._idle_mark = (wall, cpu, busy)
            return
        if wall - self._idle_mark[0] < self.recheck:
            return
        w0, c0, b0 = self._idle_mark
        others = max(0.0, (busy - b0) - (cpu - c0)) / (wall - w0)
        self._idle_mark = (wall, cpu, busy)
        if others < IDLE_OTHERS:
            self._mark = (wall, cpu)
            self._idle_mark = None
            why = f"other processes used {others:.2f} cores for {wall - w0:.0f} s"
            self._set(step, self.initial, why)

    def on_step(self, step: int) -> None:
        """Every ``interval`` seconds, compare CPU time with wall time × threads."""
        if not self.adapt:
            return
        if self.threads < self.initial:
            self._maybe_back_up(step)
            return
        if self.threads <= 1:
            return
        wall, cpu = time.perf_counter(), time.process_time()
        if wall - self._mark[0] < self.interval:
            return
        share = (cpu - self._mark[1]) / ((wall - self._mark[0]) * self.threads)
        self._mark = (wall, cpu)
        if share < CONTENDED_SHARE:
            self._set(step, 1, f"its {self.threads} threads got {share:.0%} of their cores")

    def on_epoch(self, entry: dict[str, Any]) -> None:
        """Nothing per epoch."""

    def record(self) -> dict[str, Any]:
        """The choice, why, and any change, for the training record."""
        return {
            "torch_threads": self.initial,
            "torch_threads_reason": self.reason,
            "torch_threads_changes": self.changes,
        }
