from __future__ import annotations

import os
import warnings

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")


@pytest.fixture(autouse=True)
def _no_future_noise():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)
        yield


@pytest.fixture(scope="session")
def pima():
    from tests.helpers import real

    return real("MASS/Pima.tr")


@pytest.fixture(scope="session")
def pima_model(pima):
    """A small tabular-lm fitted once on the real Pima.tr table (200 women)."""
    from healthsynth.data import infer_schema
    from healthsynth.generators.tabular_lm import TabularLM

    schema = infer_schema(pima, target="type")
    return TabularLM(n_embd=64, n_layer=2, n_head=4, seed=0, privacy_stop=False).fit(
        pima, schema=schema
    )


@pytest.fixture(scope="session")
def postgres_url():
    """A PostgreSQL server for the OMOP tests (fails instead of skipping in CI)."""
    from tests.helpers import postgres_url

    return postgres_url()
