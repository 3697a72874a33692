"""Per-row log-likelihood of tabular-lm (score_rows): the training objective, summed per row."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from healthsynth.errors import ConditionError, NotFittedError
from healthsynth.generators import load_generator
from healthsynth.generators.tabular_lm import TabularLM
from healthsynth.generators.tabular_lm._slot_model import TableObjective
from tests.helpers import real


@pytest.fixture(scope="module")
def fitted():
    df = real("MASS/Pima.tr")
    gen = TabularLM(n_embd=32, n_layer=2, n_head=2, epochs=3, seed=0, privacy_stop=False)
    return df, gen.fit(df)


def test_scores_are_the_validation_loss_summed_per_row(fitted, tmp_path):
    df, gen = fitted
    rows = df.iloc[gen.validation_rows_].reset_index(drop=True)
    scores = gen.score_rows(rows)
    assert scores.shape == (len(rows),) and (scores < 0).all()
    local = gen.codec_.encode(rows, np.random.default_rng(0))
    objective = TableObjective(gen.codec_, local, local, batch_size=16, perm_prob=0.0)
    with torch.inference_mode():
        val = objective.validation_loss(gen.model_)  # torch, per token
    assert -scores.mean() / gen.codec_.n_slots == pytest.approx(val, rel=1e-5)
    # a saved model (numpy, no torch) scores the same
    gen.save(tmp_path / "m")
    np.testing.assert_allclose(load_generator(tmp_path / "m").score_rows(rows), scores, rtol=1e-6)


def test_training_rows_score_above_rows_the_model_never_saw():
    df = real("MASS/Pima.tr")
    gen = TabularLM(
        n_embd=32,
        n_layer=2,
        n_head=2,
        epochs=120,
        dropout=0.0,
        early_stopping=False,
        privacy_stop=False,
        seed=0,
    ).fit(df.iloc[:60])
    held = set(gen.validation_rows_.tolist())
    trained = [i for i in range(60) if i not in held]
    assert gen.score_rows(df.iloc[trained]).mean() > gen.score_rows(df.iloc[60:]).mean() + 1.0


def test_bad_rows_and_unfitted_models(fitted):
    df, gen = fitted
    with pytest.raises(NotFittedError):
        TabularLM().score_rows(df)
    with pytest.raises(ConditionError, match="lack column 'glu'"):
        gen.score_rows(df.drop(columns="glu"))
    with pytest.raises(ConditionError, match="'type' holds 'Maybe'"):
        gen.score_rows(df.assign(type="Maybe"))
