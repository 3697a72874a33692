from __future__ import annotations

import json
import os

import pytest

from tests.helpers import real


def mark_sampled(path, model="model/"):
    """Write the run record `healthsynth sample` leaves next to its output."""
    run = path / "run.json" if path.is_dir() else path.with_name(path.name + ".run.json")
    run.write_text(json.dumps({"command": "sample", "output": str(path), "model": model}))
    return run


@pytest.fixture(scope="session")
def pbc():
    return real("survival/pbc")


@pytest.fixture
def pbc_csv(tmp_path, pbc):
    """40 PBC patients as a sampled (synthetic-marked) table: rows of a real cohort stand in
    for a generator's output, with the run record that proves a file was sampled."""
    path = tmp_path / "synthetic.csv"
    pbc.head(40).to_csv(path, index=False)
    mark_sampled(path)
    return path


@pytest.fixture
def nafld_folder(tmp_path):
    from healthsynth.data import load_timelines

    folder = tmp_path / "timelines"
    load_timelines("nafld", max_patients=30, seed=0).write(folder)
    return folder


@pytest.fixture(autouse=True)
def _no_api_key(monkeypatch):
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    os.environ.setdefault("NO_PROXY", "127.0.0.1,localhost")
