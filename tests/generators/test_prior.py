"""The prior for small tables: built from public tables, fine-tuned on a user's table."""

from __future__ import annotations

import json

import pytest

from healthsynth.cli import app
from healthsynth.errors import ParameterError
from healthsynth.generators.tabular_lm import TabularLM
from healthsynth.generators.tabular_lm._prior import (
    HELD_OUT,
    PRIOR_TABLES,
    build_prior,
    prior_info,
    public_tables,
)
from tests.helpers import build_tiny_checkpoint, real

#: Three small public tables and a tiny model: the whole path in a few seconds.
SMALL = ("MASS/birthwt", "KMsurv/larynx", "survival/veteran")


@pytest.fixture(scope="module")
def prior(tmp_path_factory):
    out = tmp_path_factory.mktemp("prior") / "p"
    build_prior(out, tables=SMALL, max_rows=100, epochs=2, n_embd=32, n_layer=1, n_head=2)
    return out


def test_the_prior_never_holds_an_evaluation_table():
    assert not [t for t in PRIOR_TABLES if any(h in t.lower() for h in HELD_OUT)]
    assert len(set(PRIOR_TABLES)) == len(PRIOR_TABLES)
    with pytest.raises(ParameterError, match="survival/pbcseq is an evaluation table"):
        public_tables(("survival/pbcseq",))


def test_a_built_prior_records_what_it_learned_from(prior):
    info = prior_info(prior)
    assert [t["table"] for t in info["tables"]] == list(SMALL)
    birthwt = real("MASS/birthwt")
    assert info["tables"][0] == {"table": "MASS/birthwt", "rows": 100, "columns": 10}
    assert len(birthwt) > 100  # the row cap was applied
    assert info["training"]["epochs_run"] == 2
    assert info["training"]["best_val_nll_per_token"] > 0
    assert (prior / "model.safetensors").exists() and (prior / "tokenizer.json").exists()
    assert not list(prior.parent.glob(".p.tmp-*"))  # written aside, then renamed
    with pytest.raises(ParameterError, match="already exists"):
        build_prior(prior, tables=SMALL[:1])


def test_digits_are_single_tokens_in_the_prior_vocabulary(prior):
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(prior, local_files_only=True)
    ids = tok("age is 2024.75, bwt is -3", add_special_tokens=False)["input_ids"]
    pieces = [tok.decode([i]) for i in ids]
    assert {"2", "0", "4", "7", "5", "3"} <= set(pieces)
    assert not [p for p in pieces if sum(ch.isdigit() for ch in p) > 1]


def test_fit_fine_tunes_the_prior_and_samples_valid_rows(prior, tmp_path, pima):
    few = pima.head(60)
    gen = TabularLM(prior=str(prior), epochs=2, privacy_stop=False).fit(few)
    assert gen.training_record_["encoding"] == "text"
    assert gen.training_record_["learning_rate"] == 5e-4
    assert gen.training_record_["batch_size"] == 8  # the text path's, not the slot schedule's
    out = gen.sample(30, seed=0, conditions={"type": "Yes"})
    gen.schema_.validate(out)
    assert (out["type"] == "Yes").all() and len(out) == 30
    gen.save(tmp_path / "m")
    # the model folder holds the fine-tuned weights: it loads without the prior
    back = TabularLM.load(tmp_path / "m")
    assert len(back.sample(5, seed=1)) == 5


def test_what_is_not_a_prior_is_refused_in_one_sentence(prior, tmp_path, pima):
    with pytest.raises(ParameterError, match="does not exist; build one with"):
        TabularLM(prior=str(tmp_path / "nowhere")).fit(pima)
    ckpt = build_tiny_checkpoint(tmp_path / "ckpt", ["age is 1", "0123456789.-"])
    with pytest.raises(ParameterError, match="no prior.json.*give it as --base-model"):
        TabularLM(prior=str(ckpt)).fit(pima)
    with pytest.raises(ParameterError, match="either base_model or prior"):
        TabularLM(prior=str(prior), base_model=str(ckpt)).fit(pima)
    other = tmp_path / "other"
    other.mkdir()
    info = json.loads((prior / "prior.json").read_text())
    (other / "prior.json").write_text(json.dumps({**info, "format_version": 99}))
    with pytest.raises(ParameterError, match="built for text encoding version 99"):
        TabularLM(prior=str(other)).fit(pima)
    with pytest.raises(ParameterError, match="trains the from-scratch model only"):
        TabularLM(prior=str(prior), dp_epsilon=1.0).fit(pima)


def test_cli_refuses_a_missing_prior_with_exit_2(tmp_path):
    from typer.testing import CliRunner

    data = tmp_path / "pima.csv"
    real("MASS/Pima.tr").to_csv(data, index=False)
    res = CliRunner().invoke(
        app, ["fit", str(data), "--out", str(tmp_path / "m"), "--prior", str(tmp_path / "none")]
    )
    assert res.exit_code == 2
    assert "does not exist; build one with 'healthsynth prior build" in res.output
    assert not (tmp_path / "m").exists()
    res = CliRunner().invoke(app, ["prior", "build", "--out", str(tmp_path / "p"), "--epochs", "0"])
    assert res.exit_code == 2 and "epochs must be at least 1; got 0" in res.output
