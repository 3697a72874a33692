"""The flags that choose where a command runs: ``--engine``, ``--ray-address``, ``--workers``.

``--engine local`` (the default) runs in this process and never imports Ray; ``--engine ray``
runs on Ray workers (the ``ray`` extra), on the cluster at ``--ray-address`` or on a local Ray
instance started for the command.
"""

from __future__ import annotations

import logging
import os
from typing import Annotated

import typer

from healthsynth.errors import ParameterError

__all__ = ["EngineOption", "RayAddressOption", "WorkersOption", "engine_settings"]

EngineOption = Annotated[
    str,
    typer.Option(
        "--engine",
        help="Where to run: local (this process, the default) or ray (Ray workers; needs the "
        "'ray' extra).",
    ),
]
RayAddressOption = Annotated[
    str | None,
    typer.Option(
        "--ray-address",
        help="--engine ray: the Ray cluster to join (HOST:PORT, ray://HOST:PORT or auto); "
        "default: a local Ray instance.",
    ),
]
WorkersOption = Annotated[
    int | None,
    typer.Option(
        "--workers", help="--engine ray: Ray workers, one CPU each (default: this machine's CPUs)."
    ),
]


def engine_settings(
    engine: str, ray_address: str | None, workers: int | None
) -> tuple[str, str | None, int]:
    """The checked ``(engine, address, workers)``; Ray's presence is checked for ``ray``."""
    from healthsynth.scale import check_engine, check_workers, import_ray

    check_engine(engine, flag="--engine")
    if engine == "local":
        for flag, value in (("--ray-address", ray_address), ("--workers", workers)):
            if value is not None:
                raise ParameterError(
                    f"{flag} applies to --engine ray; add --engine ray or leave it out"
                )
        return "local", None, 1
    workers = check_workers(
        workers if workers is not None else os.cpu_count() or 1, flag="--workers"
    )
    import_ray("--engine ray")
    # the command line is the application: Ray's own notices (a local instance started, token
    # authentication) are not the user's business; its errors still show. Set after the
    # import, which configures Ray's logger.
    logging.getLogger("ray").setLevel(logging.ERROR)
    return "ray", ray_address, workers
