"""Ray, the engine scale-out runs on: importing it, joining or starting a cluster, workers.

Nothing here imports Ray at module level: ``--engine local`` (the default everywhere) never
loads it. :func:`ray_session` joins the cluster at an address (checked with a plain TCP
connection first, so an unreachable head node fails in seconds with one sentence instead of
Ray's minute of retries), reuses a Ray session the caller already started (a notebook, the
tests), or starts a local one sized for the workers asked for, and shuts down only what it
started.
"""

from __future__ import annotations

import os
import socket
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from types import ModuleType
from typing import Any

from healthsynth.errors import EngineError, MissingExtraError, ParameterError

__all__ = [
    "ENGINES",
    "check_engine",
    "check_workers",
    "cluster_summary",
    "import_ray",
    "ray_session",
    "start_workers",
]

#: the engines every scale-out entry point accepts
ENGINES = ("local", "ray")
#: seconds to wait for a TCP connection to a Ray head node before calling it unreachable
_CONNECT_TIMEOUT_S = 5.0
#: seconds to wait for workers to be placed and to load what they need
WORKER_START_TIMEOUT_S = 300.0


def import_ray(purpose: str = "--engine ray") -> ModuleType:
    """Import Ray, or raise :class:`MissingExtraError` naming the ``ray`` extra."""
    try:
        import ray
    except ModuleNotFoundError as e:
        if e.name is not None and e.name.split(".")[0] != "ray":
            raise
        raise MissingExtraError("ray", "ray", purpose) from None
    return ray


def check_engine(engine: Any, *, flag: str = "engine") -> str:
    """``engine`` when it is one of :data:`ENGINES`, else a :class:`ParameterError`."""
    if engine not in ENGINES:
        raise ParameterError(f"{flag} must be one of {', '.join(ENGINES)}; got {engine!r}")
    return str(engine)


def check_workers(workers: Any, *, flag: str = "workers") -> int:
    """``workers`` as a positive whole number, else a :class:`ParameterError`."""
    if isinstance(workers, bool) or not isinstance(workers, int) or workers < 1:
        raise ParameterError(
            f"{flag} must be a positive whole number of Ray workers (1 or more); got {workers!r}"
        )
    return workers


def _check_reachable(address: str) -> None:
    """Refuse an address whose head node does not accept a TCP connection."""
    if address in ("auto", "local"):
        return
    hostport = address.split("://", 1)[1] if "://" in address else address
    host, sep, port_text = hostport.rpartition(":")
    if not sep or not host or not port_text.isdigit():
        raise ParameterError(
            f"Ray address {address!r} is not HOST:PORT, ray://HOST:PORT or 'auto'; give the "
            "address the head node printed at 'ray start --head'"
        )
    try:
        with socket.create_connection((host.strip("[]"), int(port_text)), _CONNECT_TIMEOUT_S):
            pass
    except OSError as e:
        why = e.strerror or type(e).__name__
        raise EngineError(
            f"cannot reach the Ray cluster at {address} ({why.lower()}); check the address and "
            "that the head node is running ('ray start --head') and its port is open"
        ) from None


@contextmanager
def ray_session(
    *, address: str | None = None, workers: int = 1, purpose: str = "--engine ray"
) -> Iterator[ModuleType]:
    """Yield the imported ``ray`` module with a session open.

    Parameters
    ----------
    address
        A running cluster's address (``HOST:PORT``, ``ray://HOST:PORT`` or ``auto``), checked
        for a listening head node first. A session already open in this process (a notebook's,
        the tests') is used as it is; otherwise the cluster at ``address`` is joined, or
        without one a local Ray instance is started with ``max(workers, CPU count)`` CPUs
        (``RAY_ADDRESS`` in the environment is honoured, as by ``ray.init``).
    workers
        Workers the caller will start (sizes a local instance).
    purpose
        What needs Ray, for the message when it is not installed.
    """
    ray = import_ray(purpose)
    if address is not None:
        _check_reachable(address)
    if ray.is_initialized():
        yield ray
        return
    options: dict[str, Any] = {
        "include_dashboard": False,
        "log_to_driver": False,
        "configure_logging": False,
    }
    if address is None and not os.environ.get("RAY_ADDRESS"):
        options["num_cpus"] = max(workers, os.cpu_count() or 1)
    try:
        ray.init(address=address, **options)
    except (ConnectionError, TimeoutError, RuntimeError, ValueError) as e:
        where = f"the Ray cluster at {address}" if address else "a local Ray instance"
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise EngineError(
            f"cannot connect to {where} ({first.rstrip('.')}); check --ray-address and that "
            "the cluster runs the same Ray and Python versions as this machine"
        ) from None
    try:
        yield ray
    finally:
        ray.shutdown()


def cluster_summary(ray: ModuleType) -> dict[str, Any]:
    """What the cluster offers: CPUs, GPUs, nodes (for run records)."""
    res = ray.cluster_resources()
    nodes = [n for n in ray.nodes() if n.get("Alive")]
    return {
        "cpus": float(res.get("CPU", 0.0)),
        "gpus": float(res.get("GPU", 0.0)),
        "nodes": len(nodes),
        "ray": getattr(ray, "__version__", None),
    }


def start_workers(
    ray: ModuleType,
    actor_class: Any,
    count: int,
    *,
    args: Sequence[Any] = (),
    timeout_s: float = WORKER_START_TIMEOUT_S,
    what: str = "worker",
) -> list[Any]:
    """Start ``count`` actors of ``actor_class`` and wait until each has finished ``__init__``.

    Raises :class:`EngineError` when they do not all start within ``timeout_s`` (too few free
    CPUs) or one fails while starting (the failure's own :class:`HealthsynthError` is raised
    as it is).
    """
    actors = [actor_class.remote(*args) for _ in range(count)]
    ready = [a.ping.remote() for a in actors]
    done, waiting = ray.wait(ready, num_returns=len(ready), timeout=timeout_s)
    for ref in done:
        unwrap(ray, ref, what=f"a {what} failed while starting")
    if waiting:
        for a in actors:
            ray.kill(a)
        cpus = ray.available_resources().get("CPU", 0.0)
        raise EngineError(
            f"only {len(done)} of {count} {what}s started within {timeout_s:.0f} s (the cluster "
            f"has {cpus:g} free CPUs, each {what} takes 1); lower --workers or add nodes"
        )
    return actors


def unwrap(ray: ModuleType, ref: Any, *, what: str) -> Any:
    """``ray.get(ref)``, with a worker's own healthsynth error raised as it is.

    Any other failure inside the worker becomes one :class:`EngineError` sentence; a dead
    worker raises Ray's ``RayActorError`` (callers that can recover catch it).
    """
    from healthsynth.errors import HealthsynthError

    try:
        return ray.get(ref)
    except ray.exceptions.RayActorError:
        raise
    except ray.exceptions.RayTaskError as e:
        cause = getattr(e, "cause", None)
        if isinstance(cause, HealthsynthError):
            raise cause from None
        if isinstance(cause, MemoryError):
            raise EngineError(
                f"{what}: a worker ran out of memory; use smaller blocks or bigger nodes"
            ) from None
        detail = f"{type(cause).__name__}: {cause}" if cause is not None else str(e)
        detail = detail.strip().splitlines()[0] if detail.strip() else "unknown error"
        raise EngineError(f"{what}: {detail}") from None
