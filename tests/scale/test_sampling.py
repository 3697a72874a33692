"""Distributed sampling on a local Ray cluster: same bytes for any worker count, every format,
a worker killed mid-run, and the bad input the issue lists."""

from __future__ import annotations

import hashlib
import os
import signal
import socket
import subprocess
import sys
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from healthsynth.data import infer_schema
from healthsynth.errors import EngineError, MissingExtraError, ParameterError
from healthsynth.generators import load_generator, registry
from healthsynth.scale import block_seed, plan_blocks, sample
from tests.helpers import real
from tests.scale.conftest import ray_or_skip


def _digests(path: Path) -> dict[str, str]:
    """sha256 of every data file of an output (run records, manifests, MEDS' dated JSON: no)."""
    path = Path(path)
    files = [path] if path.is_file() else sorted(p for p in path.rglob("*") if p.is_file())
    skip = ("run.json", ".healthsynth-manifest.json", "dataset.json")
    return {
        p.name if path.is_file() else p.relative_to(path).as_posix(): hashlib.sha256(
            p.read_bytes()
        ).hexdigest()
        for p in files
        if not p.name.endswith(skip)
    }


@pytest.fixture(scope="module")
def pbc():
    return real("survival/pbc")


@pytest.fixture(scope="module")
def marginals_dir(pbc, tmp_path_factory):
    out = tmp_path_factory.mktemp("models") / "marginals"
    gen = registry.get("marginals")(seed=0).fit(pbc, schema=infer_schema(pbc))
    return gen.save(out)


@pytest.fixture(scope="module")
def tabular_dir(tmp_path_factory):
    from healthsynth.generators.tabular_lm import TabularLM

    pima = real("MASS/Pima.tr")
    gen = TabularLM(n_embd=32, n_layer=1, n_head=2, epochs=2, seed=0, privacy_stop=False)
    gen.fit(pima, schema=infer_schema(pima, target="type"))
    return gen.save(tmp_path_factory.mktemp("models") / "tabular")


# -- the block plan (no Ray needed) -----------------------------------------------------------
def test_block_seeds_depend_only_on_the_root_and_the_index():
    a = plan_blocks(10, 4, root=7)
    assert [(b.start, b.size) for b in a] == [(0, 4), (4, 4), (8, 2)]
    b = plan_blocks(1000, 4, root=7)
    assert [x.seed for x in a] == [x.seed for x in b[:3]]  # n does not move the seeds
    assert len({x.seed for x in b}) == len(b)
    assert block_seed(7, 0) != block_seed(8, 0)
    assert all(0 <= x.seed < 2**31 for x in b)
    with pytest.raises(ParameterError, match="block_size"):
        plan_blocks(10, 0, root=1)


def test_bad_settings_are_refused_before_any_work(marginals_dir, tmp_path):
    with pytest.raises(ParameterError, match="workers must be a positive whole number"):
        sample(marginals_dir, 10, tmp_path / "a", workers=0)
    with pytest.raises(ParameterError, match="engine must be one of local, ray"):
        sample(marginals_dir, 10, tmp_path / "a", engine="spark")
    with pytest.raises(ParameterError, match="seed must be a whole number"):
        sample(marginals_dir, 10, tmp_path / "a", engine="local", seed=-1)
    with pytest.raises(ParameterError, match="timeline models"):
        sample(marginals_dir, 10, tmp_path / "a", engine="local", fmt="omop")
    with pytest.raises(ParameterError, match=r"ends in '\.txt'"):
        sample(marginals_dir, 10, tmp_path / "a.txt", engine="local")
    assert list(tmp_path.iterdir()) == []


def test_ray_not_installed_names_the_extra(marginals_dir, tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "ray", None)  # import ray now fails as if not installed
    with pytest.raises(MissingExtraError, match=r"pip install 'healthsynth\[ray\]'"):
        sample(marginals_dir, 10, tmp_path / "a", engine="ray", workers=1)
    assert list(tmp_path.iterdir()) == []


def test_the_local_engine_and_import_healthsynth_never_import_ray(marginals_dir, tmp_path):
    code = (
        "import sys; from healthsynth.scale import sample; "
        f"sample({str(marginals_dir)!r}, 500, {str(tmp_path / 'out')!r}, engine='local', "
        "block_size=200, seed=0); "
        "from typer.testing import CliRunner; from healthsynth.cli import app; "
        f"r = CliRunner().invoke(app, ['sample', {str(marginals_dir)!r}, '-n', '50', '-o', "
        f"{str(tmp_path / 'x.csv')!r}]); assert r.exit_code == 0, r.output; "
        "print('ray' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip().splitlines()[-1] == "False"


# -- on Ray -----------------------------------------------------------------------------------
def _model_copies() -> set[str]:
    """Model folders the sampling actors unpack (into the shared temporary folder)."""
    import tempfile

    return {p.name for p in Path(tempfile.gettempdir()).glob("healthsynth-model-*")}


def test_tabular_lm_same_bytes_for_one_and_two_workers(ray_cluster, tabular_dir, tmp_path):
    kw = {"seed": 11, "block_size": 150}
    copies = _model_copies()
    local = sample(tabular_dir, 700, tmp_path / "local", engine="local", **kw)
    one = sample(tabular_dir, 700, tmp_path / "one", workers=1, **kw)
    two = sample(tabular_dir, 700, tmp_path / "two", workers=2, **kw)
    shards = _digests(tmp_path / "two")
    assert sorted(shards) == [f"part-{i:05d}.parquet" for i in range(5)]
    assert shards == _digests(tmp_path / "one") == _digests(tmp_path / "local")
    assert two.record["workers"] == 2 and len(set(two.record["worker_pids"])) == 2
    # the actors are killed, not closed: no copy of the weights may stay behind in /tmp
    assert _model_copies() <= copies
    assert one.record["blocks"] == 5 and local.record["engine"] == "local"
    for run in (local, two):  # every block's CPU seconds, counted in the process that sampled it
        assert all(0 < b["cpu_seconds"] for b in run.record["per_block"])
        assert run.record["block_cpu_seconds"]["sum"] > 0
    # the shards are the blocks the model samples at the derived seeds, in order
    model = load_generator(tabular_dir)
    got = pd.read_parquet(tmp_path / "two")
    assert len(got) == 700 and got.equals(pd.read_parquet(tmp_path / "local"))
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        first = model.sample(150, seed=block_seed(11, 0))
    finally:
        torch.set_num_threads(threads)
    pd.testing.assert_frame_equal(got.iloc[:150].reset_index(drop=True), first)
    model.schema_.validate(got)
    # one file: the same rows; a CSV too
    sample(tabular_dir, 700, tmp_path / "all.parquet", workers=2, **kw)
    assert pd.read_parquet(tmp_path / "all.parquet").equals(got)
    run = (tmp_path / "all.parquet.run.json").read_text()
    assert '"seed_entropy": 11' in run and '"engine": "ray"' in run


def test_conditions_hold_in_every_block(ray_cluster, tabular_dir, tmp_path):
    run = sample(
        tabular_dir,
        400,
        tmp_path / "yes.csv",
        workers=2,
        seed=3,
        block_size=100,
        conditions={"type": "Yes", "age": ">=40"},
    )
    df = pd.read_csv(tmp_path / "yes.csv")
    assert len(df) == 400 and (df["type"] == "Yes").all() and (df["age"] >= 40).all()
    assert run.record["conditions"] == {"type": "Yes", "age": ">=40"}


def _kill_one(state, signal_number=signal.SIGKILL):
    def progress(p):
        if p.blocks_done == 1 and not state:
            state.append(p.worker_pids[0])
            os.kill(p.worker_pids[0], signal_number)

    return progress


def test_a_worker_killed_mid_run_loses_nothing(ray_cluster, marginals_dir, tmp_path):
    kw = {"seed": 5, "block_size": 500}
    killed: list[int] = []
    run = sample(marginals_dir, 6000, tmp_path / "ray", workers=2, progress=_kill_one(killed), **kw)
    assert killed and run.record["workers_lost"] == 1
    sample(marginals_dir, 6000, tmp_path / "local", engine="local", **kw)
    assert _digests(tmp_path / "ray") == _digests(tmp_path / "local")
    assert len(pd.read_parquet(tmp_path / "ray")) == 6000


def test_losing_every_worker_fails_with_one_sentence_and_writes_nothing(
    ray_cluster, marginals_dir, tmp_path
):
    out = tmp_path / "out"
    out.mkdir()
    killed: list[int] = []
    with pytest.raises(EngineError, match="all 1 sampling workers died") as e:
        sample(
            marginals_dir,
            6000,
            out / "syn.parquet",
            workers=1,
            seed=1,
            block_size=500,
            progress=_kill_one(killed),
        )
    assert "nothing was written" in str(e.value) and "\n" not in str(e.value)
    assert sorted(p.name for p in out.iterdir()) == []


def test_an_unreachable_address_is_one_sentence(marginals_dir, tmp_path):
    ray_or_skip()
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # free, and closed once the block ends
    with pytest.raises(EngineError, match=f"cannot reach the Ray cluster at 127.0.0.1:{port}"):
        sample(marginals_dir, 10, tmp_path / "a", address=f"127.0.0.1:{port}", workers=1)
    with pytest.raises(ParameterError, match="is not HOST:PORT"):
        sample(marginals_dir, 10, tmp_path / "a", address="nowhere", workers=1)
    assert list(tmp_path.iterdir()) == []


# -- timelines, every format ------------------------------------------------------------------
@pytest.fixture(scope="module")
def timeline_dir(tmp_path_factory):
    from healthsynth.data import load_timelines
    from healthsynth.generators.timeline_lm import TimelineLM

    ds = load_timelines("nafld", max_patients=300, seed=3)
    tiny = {"n_embd": 32, "n_layer": 2, "n_head": 2, "token_budget": 6000}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        gen = TimelineLM(epochs=2, code_map="nafld", seed=0, **tiny).fit(ds)
    return gen.save(tmp_path_factory.mktemp("models") / "timelines")


def test_timelines_same_bytes_on_ray_and_blocks_continue_ids(ray_cluster, timeline_dir, tmp_path):
    kw = {"seed": 4, "block_size": 25}
    sample(timeline_dir, 90, tmp_path / "ray", workers=2, fmt="omop", **kw)
    sample(timeline_dir, 90, tmp_path / "local", engine="local", fmt="omop", **kw)
    assert _digests(tmp_path / "ray") == _digests(tmp_path / "local")
    person = pd.read_parquet(tmp_path / "ray" / "person.parquet")
    assert person["person_id"].tolist() == list(range(1, 91))
    for table, col in (("measurement", "measurement_id"), ("observation_period", None)):
        df = pd.read_parquet(tmp_path / "ray" / f"{table}.parquet")
        ids = df[col or "observation_period_id"]
        assert ids.tolist() == list(range(1, len(df) + 1))  # continued across the 4 blocks


@pytest.mark.parametrize("fmt", ["omop", "meds", "fhir"])
def test_block_exports_equal_the_export_of_the_whole_sample(timeline_dir, tmp_path, fmt):
    """Blockwise OMOP / MEDS / FHIR, merged, equal exporting the same patients in one go."""
    from healthsynth.cli._tables import read_dataset
    from healthsynth.data import export_dataset_as
    from healthsynth.generators._folder import check_folder
    from healthsynth.knowledge import load_code_map

    kw = {"seed": 9, "block_size": 20, "engine": "local"}
    sample(timeline_dir, 50, tmp_path / "csv", fmt="csv", **kw)
    sample(timeline_dir, 50, tmp_path / fmt, fmt=fmt, **kw)
    _, meta = check_folder(timeline_dir)
    roles = meta["template"]["roles"]
    whole = read_dataset({t: tmp_path / "csv" / f"{t}.csv" for t in roles["tables"]}, roles)
    assert len(whole.patient_table) == 50
    export_dataset_as(whole, tmp_path / "whole", fmt=fmt, code_map=load_code_map("nafld"))
    got, want = tmp_path / fmt, tmp_path / "whole"
    if fmt == "fhir":
        assert _digests(got) == _digests(want)
        assert len(_digests(got)) == 50
    elif fmt == "omop":
        for p in sorted(want.glob("*.parquet")):
            pd.testing.assert_frame_equal(pd.read_parquet(got / p.name), pd.read_parquet(p))
    else:
        data = pd.concat(
            [
                pd.read_parquet(p)
                for p in sorted(
                    (got / "data" / "train").glob("*.parquet"), key=lambda p: int(p.stem)
                )
            ],
            ignore_index=True,
        )
        pd.testing.assert_frame_equal(data, pd.read_parquet(want / "data/train/0.parquet"))
        codes_got = pd.read_parquet(got / "metadata/codes.parquet").sort_values("code")
        codes_want = pd.read_parquet(want / "metadata/codes.parquet").sort_values("code")
        assert codes_got["code"].tolist() == codes_want["code"].tolist()
        assert codes_got["description"].tolist() == codes_want["description"].tolist()
        splits = pd.read_parquet(got / "metadata/subject_splits.parquet")
        assert splits["subject_id"].tolist() == sorted(np.unique(data["subject_id"]).tolist())


def test_timeline_csv_blocks_are_the_model_s_blocks(timeline_dir, tmp_path):
    sample(timeline_dir, 45, tmp_path / "csv", fmt="csv", seed=2, block_size=20, engine="local")
    model = load_generator(timeline_dir)
    blocks = plan_blocks(45, 20, root=2)
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        last = model.sample(blocks[2].size, seed=blocks[2].seed, id_start=blocks[2].start)
    finally:
        torch.set_num_threads(threads)
    patients = pd.read_csv(tmp_path / "csv" / "patients.csv")
    assert patients["id"].tolist() == list(range(1, 46))
    tail = patients.iloc[40:].reset_index(drop=True)
    want = last.tables["patients"].reset_index(drop=True)
    pd.testing.assert_frame_equal(tail, want, check_dtype=False)


def test_a_pickled_model_needs_trust_on_the_workers_too(ray_cluster, pbc, tmp_path):
    from healthsynth.errors import ModelFolderError
    from tests.helpers import extra_or_skip

    with extra_or_skip():
        cls = registry.get("gaussian-copula")
        small = pbc.drop(columns=["id"]).iloc[:150]
        folder = cls(seed=0).fit(small, schema=infer_schema(small)).save(tmp_path / "gc")
    with pytest.raises(ModelFolderError, match="pickle"):
        sample(folder, 100, tmp_path / "a", workers=1, seed=0)
    assert not (tmp_path / "a").exists()
    run = sample(folder, 100, tmp_path / "b.csv", workers=1, seed=0, trust_pickle=True)
    assert run.record["n"] == 100 and len(pd.read_csv(tmp_path / "b.csv")) == 100
