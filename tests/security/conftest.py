"""Model folders for the security tests: genuine ones (small fits on real data) to tamper with."""

from __future__ import annotations

import shutil
import warnings
from pathlib import Path

import pytest

from tests.helpers import real


@pytest.fixture(scope="session")
def tabular_lm_folder(tmp_path_factory) -> Path:
    """A genuine tabular-lm model folder, fitted for one epoch on the real Pima.tr table."""
    from healthsynth.data import infer_schema
    from healthsynth.generators.tabular_lm import TabularLM

    df = real("MASS/Pima.tr")
    gen = TabularLM(epochs=1, n_embd=16, n_layer=1, n_head=2, seed=0, privacy_stop=False)
    gen.fit(df, schema=infer_schema(df, target="type"))
    return gen.save(tmp_path_factory.mktemp("genuine") / "tabular-lm")


@pytest.fixture(scope="session")
def timeline_lm_folder(tmp_path_factory) -> Path:
    """A genuine timeline-lm model folder, fitted briefly on 120 real NAFLD patients."""
    from healthsynth.data import load_timelines
    from healthsynth.generators.timeline_lm import TimelineLM

    data = load_timelines("nafld", max_patients=120, seed=0)
    gen = TimelineLM(epochs=1, n_embd=16, n_layer=1, n_head=2, token_budget=2000, seed=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        gen.fit(data)
    return gen.save(tmp_path_factory.mktemp("genuine") / "timeline-lm")


@pytest.fixture
def copy_of(tmp_path):
    """``copy_of(folder)``: a fresh copy of a model folder, to tamper with."""

    def copy(src: Path) -> Path:
        dest = tmp_path / f"copy-{src.name}"
        shutil.copytree(src, dest)
        return dest

    return copy
