"""A local Ray cluster (2 CPUs) for the scale-out tests, started once for this package.

Without Ray the tests that need it skip, except in CI (``HEALTHSYNTH_REQUIRE_EXTRAS=1``), where
a missing Ray fails them: the ``ray`` extra is part of the ``test`` extra.
"""

from __future__ import annotations

import os

import pytest


def ray_or_skip():
    try:
        import ray
    except ModuleNotFoundError:
        if os.environ.get("HEALTHSYNTH_REQUIRE_EXTRAS") == "1":
            pytest.fail("HEALTHSYNTH_REQUIRE_EXTRAS=1 but Ray (the 'ray' extra) is missing")
        pytest.skip("Ray is not installed (pip install 'healthsynth[ray]')")
    return ray


@pytest.fixture(scope="package")
def ray_cluster():
    """A Ray session with 2 CPUs, shared by the tests of this package and shut down after."""
    ray = ray_or_skip()
    started = not ray.is_initialized()
    if started:
        ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, configure_logging=False)
    yield ray
    if started:
        ray.shutdown()
