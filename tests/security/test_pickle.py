"""No code runs from a model folder: pickles only with trust_pickle, never an ``auto_map``.

Each crafted folder carries a payload that creates a marker file when it runs; a test passes
only if the load is refused in one sentence and the marker never appears. The sanity tests
show the payloads are real: loaded the way the libraries would load them when trusted, they
do create the marker.
"""

from __future__ import annotations

import json
import os
import pickle
import re
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from healthsynth.data import infer_schema
from healthsynth.errors import ModelFolderError
from healthsynth.generators import load_generator, registry
from tests.helpers import extra_or_skip, real

#: the generators whose folders hold a pickle, and the file
PICKLED = {"ctgan": "model.pkl", "tvae": "model.pkl", "gaussian-copula": "synthesizer.pkl"}


def one_sentence(message: str) -> None:
    assert "\n" not in message and not re.search(r"[.!?]\s+[A-Z]", message), message


class _RunsCode:
    """Unpickles as a call that writes ``marker`` (the classic pickle payload)."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (exec, (f"open({str(self.marker)!r}, 'w').write('code ran')",))


def crafted_folder(root: Path, generator: str, marker: Path, **meta_extra) -> Path:
    """A model folder for ``generator`` whose pickle writes ``marker`` when unpickled."""
    df = real("MASS/Pima.tr", 60)
    folder = root / f"crafted-{generator}"
    (folder / "model").mkdir(parents=True)
    infer_schema(df, target="type").save(folder / "schema.json")
    meta = {
        "format": "healthsynth.generator",
        "format_version": 1,
        "generator": generator,
        "params": {},
        **meta_extra,
    }
    (folder / "generator.json").write_text(json.dumps(meta), encoding="utf-8")
    (folder / "training.json").write_text("{}", encoding="utf-8")
    (folder / "model" / "encoding.json").write_text('{"columns": []}', encoding="utf-8")
    (folder / "model" / PICKLED[generator]).write_bytes(pickle.dumps(_RunsCode(marker)))
    return folder


# -- pickles ---------------------------------------------------------------------------------
@pytest.mark.parametrize("generator", sorted(PICKLED))
def test_crafted_pickle_is_refused_and_never_runs(tmp_path, generator):
    marker = tmp_path / "marker"
    folder = crafted_folder(tmp_path, generator, marker)
    for load in (load_generator, registry.get(generator).load):
        with pytest.raises(ModelFolderError) as e:
            load(folder)
        message = str(e.value)
        one_sentence(message)
        assert f"model/{PICKLED[generator]}" in message and str(folder) in message
        assert "runs whatever code" in message and "trust_pickle=True" in message
        assert "--trust-pickle" in message
    # only True opts in: a truthy string or number does not
    with pytest.raises(ModelFolderError, match="holds a pickle"):
        load_generator(folder, trust_pickle="yes")
    assert not marker.exists()


def test_a_flag_inside_the_folder_cannot_opt_in(tmp_path):
    marker = tmp_path / "marker"
    folder = crafted_folder(tmp_path, "ctgan", marker, pickled=False, trust_pickle=True)
    with pytest.raises(ModelFolderError, match="holds a pickle"):
        load_generator(folder)
    assert not marker.exists()


@pytest.mark.parametrize("generator", sorted(PICKLED))
def test_sanity_the_crafted_pickle_runs_code_when_trusted(tmp_path, generator):
    """With the opt-in the payload does run: what the refusal above keeps from happening."""
    marker = tmp_path / "marker"
    folder = crafted_folder(tmp_path, generator, marker)
    with extra_or_skip():
        # not a real model either: after running, the load fails with one sentence
        with pytest.raises(ModelFolderError, match="could not be loaded") as e:
            load_generator(folder, trust_pickle=True)
    one_sentence(str(e.value))
    assert marker.read_text() == "code ran"


@pytest.mark.parametrize("generator", ["ctgan", "gaussian-copula"])
def test_genuine_pickled_folder_loads_only_with_the_opt_in(tmp_path, generator):
    df = real("MASS/Pima.tr")
    params = {"epochs": 1} if generator == "ctgan" else {}
    gen = registry.create(generator, **params)
    with extra_or_skip():
        gen.fit(df, schema=infer_schema(df, target="type"))
    gen.save(tmp_path / "m")
    with pytest.raises(ModelFolderError, match="trust_pickle=True"):
        load_generator(tmp_path / "m")
    back = load_generator(tmp_path / "m", trust_pickle=True)
    pd.testing.assert_frame_equal(back.sample(50, seed=4), gen.sample(50, seed=4))


def test_generators_without_pickles_load_with_or_without_the_flag(tabular_lm_folder):
    assert not registry.get("tabular-lm").pickled
    a = load_generator(tabular_lm_folder).sample(20, seed=1)
    b = load_generator(tabular_lm_folder, trust_pickle=True).sample(20, seed=1)
    pd.testing.assert_frame_equal(a, b)


# -- auto_map: transformers' remote code -------------------------------------------------------
_EVIL_MODULE = """
from pathlib import Path
Path({marker!r}).write_text("code ran")
from transformers import GPT2Config, GPT2LMHeadModel


class EvilConfig(GPT2Config):
    model_type = "evil-gpt"


class EvilModel(GPT2LMHeadModel):
    config_class = EvilConfig
"""


def add_auto_map(folder: Path, marker: Path, *, config: str = "config.json") -> Path:
    """Point ``model/<config>``'s ``auto_map`` at a module in the folder that writes ``marker``."""
    model = folder / "model"
    path = model / config
    data = json.loads(path.read_text(encoding="utf-8")) if path.exists() else {}
    data["auto_map"] = {"AutoConfig": "evil.EvilConfig", "AutoModelForCausalLM": "evil.EvilModel"}
    if config == "config.json":
        data["model_type"] = "evil-gpt"  # no class in transformers: only the folder's code fits
    path.write_text(json.dumps(data), encoding="utf-8")
    (model / "evil.py").write_text(_EVIL_MODULE.format(marker=str(marker)), encoding="utf-8")
    return folder


@pytest.mark.parametrize("which", ["tabular_lm_folder", "timeline_lm_folder"])
@pytest.mark.parametrize("config", ["config.json", "tokenizer_config.json"])
def test_auto_map_is_refused_and_never_imported(request, copy_of, tmp_path, which, config):
    marker = tmp_path / "marker"
    folder = add_auto_map(copy_of(request.getfixturevalue(which)), marker, config=config)
    for trust in (False, True):  # trusting pickles is not trusting code
        with pytest.raises(ModelFolderError) as e:
            load_generator(folder, trust_pickle=trust)
        one_sentence(str(e.value))
        assert f"model/{config} has an 'auto_map' entry" in str(e.value)
    assert not marker.exists()


def test_auto_map_nested_in_a_sub_config_is_refused(copy_of, tabular_lm_folder, tmp_path):
    folder = copy_of(tabular_lm_folder)
    path = folder / "model" / "config.json"
    data = json.loads(path.read_text(encoding="utf-8"))
    data["text_config"] = {"auto_map": {"AutoModel": "evil.EvilModel"}}
    path.write_text(json.dumps(data), encoding="utf-8")
    with pytest.raises(ModelFolderError, match="'auto_map' entry"):
        load_generator(folder)


def test_sanity_the_auto_map_folder_runs_code_when_transformers_trusts_it(
    copy_of, tabular_lm_folder, tmp_path
):
    """transformers with trust_remote_code=True imports the folder's module (in a child
    process whose Hugging Face caches are in tmp_path)."""
    marker = tmp_path / "marker"
    folder = add_auto_map(copy_of(tabular_lm_folder), marker)
    code = (
        "import sys; from transformers import AutoModelForCausalLM; "
        "AutoModelForCausalLM.from_pretrained(sys.argv[1], trust_remote_code=True, "
        "local_files_only=True)"
    )
    env = dict(os.environ, HF_HOME=str(tmp_path / "hf"), HF_MODULES_CACHE=str(tmp_path / "mod"))
    env["HF_HUB_OFFLINE"] = "1"
    subprocess.run(
        [sys.executable, "-c", code, str(folder / "model")],
        env=env,
        check=True,
        capture_output=True,
        timeout=300,
    )
    assert marker.read_text() == "code ran"


# -- the command line ---------------------------------------------------------------------------
def cli(*args):
    from typer.testing import CliRunner

    from healthsynth.cli import app

    return CliRunner().invoke(app, [str(a) for a in args])


def test_cli_sample_refuses_a_crafted_pickle_without_the_flag(tmp_path):
    marker = tmp_path / "marker"
    folder = crafted_folder(tmp_path, "ctgan", marker)
    result = cli("sample", folder, "-n", "5", "-o", tmp_path / "s.csv")
    assert result.exit_code == 2, result.output
    text = " ".join(result.output.split())
    assert text.startswith("error: model folder") and "--trust-pickle" in text
    assert "Traceback" not in result.output
    assert not marker.exists() and not (tmp_path / "s.csv").exists()


def test_cli_sample_loads_a_genuine_pickle_only_with_the_flag(tmp_path):
    df = real("MASS/Pima.tr")
    gen = registry.create("ctgan", epochs=1)
    with extra_or_skip():
        gen.fit(df, schema=infer_schema(df, target="type"))
    gen.save(tmp_path / "m")
    refused = cli("sample", tmp_path / "m", "-n", "30", "-o", tmp_path / "s.csv", "--seed", "1")
    assert refused.exit_code == 2 and "--trust-pickle" in refused.output
    assert not (tmp_path / "s.csv").exists()
    args = ["sample", tmp_path / "m", "-n", "30", "-o", tmp_path / "s.csv", "--seed", "1"]
    result = cli(*args, "--trust-pickle")
    assert result.exit_code == 0, result.output
    pd.testing.assert_frame_equal(
        pd.read_csv(tmp_path / "s.csv"), gen.sample(30, seed=1), check_dtype=False
    )


def test_cli_evaluate_never_loads_a_pickled_model(tmp_path):
    """A run record naming LLM example rows next to a pickled --model: nothing is unpickled."""
    marker = tmp_path / "marker"
    folder = crafted_folder(tmp_path, "ctgan", marker)
    df = real("MASS/Pima.tr")
    df.iloc[:100].to_csv(tmp_path / "real.csv", index=False)
    df.iloc[100:].to_csv(tmp_path / "syn.csv", index=False)
    record = {"llm": {"example_rows": [0, 1, 2]}}
    (tmp_path / "syn.csv.run.json").write_text(json.dumps(record), encoding="utf-8")
    result = cli(
        "evaluate", "--real", tmp_path / "real.csv", "--synthetic", tmp_path / "syn.csv",
        "--model", folder, "--out", tmp_path / "report", "--metrics", "column_distance",
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "holds a 'ctgan' model; the regurgitation probe is left out" in result.output
    assert not marker.exists()


def test_cli_sample_refuses_an_auto_map_folder(copy_of, tabular_lm_folder, tmp_path):
    marker = tmp_path / "marker"
    folder = add_auto_map(copy_of(tabular_lm_folder), marker)
    for extra in ([], ["--trust-pickle"]):
        result = cli("sample", folder, "-n", "5", "-o", tmp_path / "s.csv", *extra)
        assert result.exit_code == 2 and "'auto_map' entry" in result.output, result.output
    assert not marker.exists() and not (tmp_path / "s.csv").exists()
