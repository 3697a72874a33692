"""Differentially private training (DP-SGD with Opacus) of tabular-lm and timeline-lm.

The tests that train need opacus (extra ``dp``): they skip without it, and fail in a run where
every extra must be there (``HEALTHSYNTH_REQUIRE_EXTRAS=1``).
"""

from __future__ import annotations

import math
import os
import sys
import warnings

import numpy as np
import pytest

from healthsynth.errors import MissingExtraError, ParameterError
from healthsynth.generators import HealthsynthWarning, load_generator
from healthsynth.generators.tabular_lm import TabularLM
from tests.helpers import real

TINY = {"n_embd": 32, "n_layer": 2, "n_head": 2}
#: The DP label model's AUC on Pima.tr's rows stays above this (see its test).
AUC_FLOOR = 0.8


@pytest.fixture
def opacus():
    """Opacus, or a skip (a failure when every extra must be installed)."""
    try:
        import opacus
    except ImportError as e:
        if os.environ.get("HEALTHSYNTH_REQUIRE_EXTRAS") == "1":
            pytest.fail(f"HEALTHSYNTH_REQUIRE_EXTRAS=1 but opacus (extra 'dp') is missing: {e}")
        pytest.skip("opacus (extra 'dp') is not installed")
    return opacus


@pytest.fixture(scope="module")
def pima():
    return real("MASS/Pima.tr")


def test_per_example_gradients_of_the_gpt_core_are_exact(opacus):
    """Opacus' per-example gradients equal one backward pass per example, for every weight.

    This covers what the GPT core needs from Opacus: both embeddings called as modules (the
    position embedding too), the output head tied to the token embedding (three uses of one
    weight), layer norms, and the projections' grad sampler.
    """
    import torch
    from torch.nn import functional as F  # noqa: N812

    from healthsynth.generators._lm._dp_sgd import _register_conv1d
    from healthsynth.generators._lm._model import build_gpt

    _register_conv1d()
    model = build_gpt(
        vocab_size=40,
        n_positions=9,
        n_embd=16,
        n_layer=2,
        n_head=2,
        dropout=0.0,
        seed=1,
        eos_token_id=1,
    )
    gen = torch.Generator().manual_seed(0)
    ids, types, labels = (torch.randint(0, 40, (5, 8), generator=gen) for _ in range(3))

    def loss(m, rows):
        logits = m(ids[rows], types[rows])
        return F.cross_entropy(logits.reshape(-1, 40), labels[rows].reshape(-1))

    one_by_one = []
    for i in range(5):
        model.zero_grad()
        loss(model, slice(i, i + 1)).backward()
        one_by_one.append({n: p.grad.clone() for n, p in model.named_parameters()})
    gsm = opacus.GradSampleModule(model, loss_reduction="mean")
    model.zero_grad()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        loss(gsm, slice(0, 5)).backward()
    names = [n for n, _ in model.named_parameters()]
    assert "transformer.wpe.weight" in names and "lm_head.weight" not in names  # tied
    for name, p in model.named_parameters():
        assert p.grad_sample.shape == (5, *p.shape), name
        for i in range(5):
            torch.testing.assert_close(p.grad_sample[i], one_by_one[i][name], rtol=1e-4, atol=1e-6)
    gsm._close()


def test_dp_fit_spends_the_budget_and_records_it(opacus, pima, tmp_path):
    gen = TabularLM(epochs=4, batch_size=50, dp_epsilon=3.0, seed=0, **TINY).fit(pima)
    rec = gen.training_record_
    dp = rec["dp"]
    n = len(pima)
    assert rec["strategy"] == "dp-sgd" and dp["unit"] == "rows" and dp["n_examples"] == n
    assert dp["delta"] == pytest.approx(0.1 / n) and dp["accountant"] == "rdp"
    assert dp["steps"] == dp["steps_planned"] == 4 * round(n / 50) == rec["steps"]
    # calibrated to spend the budget, not more (the search stops within 1 %)
    assert 0.97 * 3.0 <= dp["epsilon"] <= 3.0
    # the accountant alone, from the recorded noise, sampling rate and steps, agrees
    from opacus.accountants import RDPAccountant

    acc = RDPAccountant()
    acc.history = [(dp["noise_multiplier"], dp["sample_rate"], dp["steps"])]
    alphas = [1 + x / 10.0 for x in range(1, 100)] + list(range(12, 1025))
    assert acc.get_epsilon(delta=dp["delta"], alphas=alphas) == pytest.approx(
        dp["epsilon"], rel=2e-3
    )
    # every row trains; nothing looked at real rows outside DP-SGD to choose the weights
    assert rec["n_validation_rows"] == 0 and len(gen.validation_rows_) == 0
    assert "privacy_checks" not in rec and rec["stop_reason"] == "epochs"
    assert rec["best_epoch"] == rec["epochs_run"] == 4
    assert all(math.isnan(h["val_nll_per_token"]) for h in rec["history"])
    assert any("minimum and maximum" in s for s in dp["outside_guarantee"])
    out = gen.sample(300, seed=1)
    gen.schema_.validate(out)
    gen.save(tmp_path / "m")
    back = load_generator(tmp_path / "m")
    assert back.training_record_["dp"]["epsilon"] == dp["epsilon"]
    assert (
        back.dp_epsilon == 3.0 and back.training_record_["history"][0]["val_nll_per_token"] is None
    )


def test_dp_noise_is_not_replayable_from_the_seed(opacus, pima):
    """Same seed: identical weights without DP, different weights with DP (fresh noise)."""
    import torch

    def weights(**kw):
        g = TabularLM(epochs=1, batch_size=50, seed=3, privacy_stop=False, **TINY, **kw)
        return g.fit(pima).model_.transformer.wte.weight.detach().clone()

    assert torch.equal(weights(), weights())
    assert not torch.equal(weights(dp_epsilon=8.0), weights(dp_epsilon=8.0))


def test_more_budget_means_less_noise(opacus, pima):
    from healthsynth.generators._lm._dp import check_budget
    from healthsynth.generators._lm._dp_sgd import noise_multiplier

    def sigma(eps, accountant="rdp"):
        b = check_budget(
            epsilon=eps,
            delta=None,
            max_grad_norm=None,
            accountant=accountant,
            n_examples=200,
            unit="rows",
        )
        return noise_multiplier(b, sample_rate=0.25, steps=40, epochs=10, batch=50)

    s1, s3, s8 = sigma(1.0), sigma(3.0), sigma(8.0)
    assert s1 > s3 > s8 > 0.3
    assert sigma(3.0, "prv") < s3  # the tighter accountant needs less noise for the same ε


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({"dp_epsilon": 0}, "'dp_epsilon' must be a positive finite number"),
        ({"dp_epsilon": -1.0}, "'dp_epsilon' must be a positive finite number"),
        ({"dp_epsilon": math.inf}, "leave it out to train without differential privacy"),
        ({"dp_epsilon": "8"}, "'dp_epsilon' must be a number"),
        ({"dp_epsilon": 8, "dp_delta": 1.0}, "'dp_delta' must be above 0 and below 1"),
        ({"dp_epsilon": 8, "dp_delta": 0}, "'dp_delta' must be above 0 and below 1"),
        ({"dp_epsilon": 8, "dp_max_grad_norm": 0}, "'dp_max_grad_norm' must be a positive"),
        ({"dp_epsilon": 8, "dp_accountant": "gdp2"}, "'dp_accountant' must be one of rdp, prv"),
        ({"dp_delta": 1e-5}, "'dp_delta' is set but 'dp_epsilon' is not"),
        ({"dp_epsilon": 8, "base_model": "some/folder"}, "trains the from-scratch model only"),
    ],
)
def test_bad_privacy_settings_are_one_sentence(pima, settings, message):
    with pytest.raises(ParameterError, match=message) as e:
        TabularLM(epochs=1, **TINY, **settings).fit(pima)
    assert str(e.value).count(". ") == 0


def test_the_label_model_trains_with_dp_sgd_on_its_share_of_the_budget(opacus, pima, tmp_path):
    """Under DP the regression is trained with DP-SGD; the two parts add up to the budget."""
    from opacus.accountants import RDPAccountant
    from sklearn.metrics import roc_auc_score

    from healthsynth.data import infer_schema

    schema = infer_schema(pima, target="type")
    gen = TabularLM(epochs=2, batch_size=50, dp_epsilon=8, seed=0, **TINY)
    gen.fit(pima, schema=schema)
    rec, dp = gen.training_record_, gen.training_record_["dp"]
    assert gen.label_model_ is not None and gen.label_model_.private
    assert "trained with DP-SGD on 25% of the privacy budget" in rec["label_model"]
    net, lab = dp["parts"]["network"], dp["parts"]["label_model"]
    n = len(pima)
    assert net["epsilon_target"] == 6.0 and lab["epsilon_target"] == 2.0
    assert 0.97 * 6.0 <= net["epsilon"] <= 6.0 and 0.97 * 2.0 <= lab["epsilon"] <= 2.0
    assert dp["epsilon"] == pytest.approx(net["epsilon"] + lab["epsilon"], abs=1e-3)
    assert dp["epsilon"] <= 8.0 and dp["epsilon_target"] == 8.0
    assert dp["delta"] == pytest.approx(0.1 / n)
    assert net["delta"] == lab["delta"] == pytest.approx(0.05 / n)
    assert lab["n_examples"] == n and lab["steps"] == 30 * round(1 / lab["sample_rate"])
    # the accountant alone, from the label model's recorded noise, rate and steps, agrees
    acc = RDPAccountant()
    acc.history = [(lab["noise_multiplier"], lab["sample_rate"], lab["steps"])]
    alphas = [1 + x / 10.0 for x in range(1, 100)] + list(range(12, 1025))
    assert acc.get_epsilon(delta=lab["delta"], alphas=alphas) == pytest.approx(
        lab["epsilon"], rel=2e-3
    )
    # it carries the outcome: on Pima.tr's own rows the non-private regression scores about 0.85
    truth = (pima["type"] == "Yes").to_numpy()
    assert roc_auc_score(truth, gen.label_model_.proba(pima)[:, 1]) > AUC_FLOOR
    out = gen.sample(400, seed=1)
    gen.schema_.validate(out)
    assert set(out["type"]) == {"No", "Yes"}
    gen.save(tmp_path / "m")
    back = load_generator(tmp_path / "m")
    assert back.label_model_.private and back.label_model_.to_dict() == gen.label_model_.to_dict()
    assert back.training_record_["dp"]["parts"] == dp["parts"]


def test_the_label_model_under_a_budget_too_small_for_its_share(opacus, pima):
    """Asked for: one sentence. Automatic: left off, and the network spends the whole budget."""
    from healthsynth.data import infer_schema

    schema = infer_schema(pima, target="type")
    small = {"epochs": 1, "batch_size": 100, "dp_epsilon": 0.2, **TINY}
    with pytest.raises(ParameterError, match=r"the label model's part of the privacy budget") as e:
        TabularLM(label_model=True, **small).fit(pima, schema=schema)
    assert str(e.value).count(". ") == 0 and "label_model=False" in str(e.value)
    gen = TabularLM(**small).fit(pima, schema=schema)
    assert gen.label_model_ is None
    assert gen.training_record_["label_model"].startswith("off (automatic: the label model's")
    dp = gen.training_record_["dp"]
    assert "parts" not in dp and 0.97 * 0.2 <= dp["epsilon"] <= 0.2
    off = TabularLM(label_model=False, **small).fit(pima, schema=schema)
    assert off.label_model_ is None and off.training_record_["label_model"] == "off"


def test_delta_of_at_least_one_over_n_warns(opacus, pima):
    with pytest.warns(HealthsynthWarning, match=r"dp_delta = 0.01 is not below 1/n = 0.005"):
        TabularLM(epochs=1, batch_size=50, dp_epsilon=8, dp_delta=0.01, **TINY).fit(pima)


def test_a_budget_that_cannot_be_met_is_refused_before_training(opacus, pima):
    with pytest.raises(ParameterError, match=r"ε = 0.01 .* cannot be met within 100 epochs"):
        TabularLM(epochs=100, batch_size=20, dp_epsilon=0.01, **TINY).fit(pima)


def test_missing_opacus_names_the_extra(pima, monkeypatch):
    monkeypatch.setitem(sys.modules, "opacus", None)  # import opacus now fails
    with pytest.raises(MissingExtraError, match=r"pip install 'healthsynth\[dp\]'"):
        TabularLM(epochs=1, dp_epsilon=8, **TINY).fit(pima)


def test_timeline_dp_is_per_patient(opacus):
    from healthsynth.data import load_timelines
    from healthsynth.generators.timeline_lm import TimelineLM

    ds = load_timelines("nafld", max_patients=120, seed=3)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", HealthsynthWarning)
        gen = TimelineLM(epochs=1, token_budget=3000, dp_epsilon=8, seed=0, **TINY).fit(ds)
    rec = gen.training_record_
    assert rec["dp"]["unit"] == "patients" and rec["dp"]["n_examples"] == 120
    assert rec["n_validation_patients"] == 0 and rec["dp"]["epsilon"] <= 8.0
    # prevalence calibration would use the real prevalences outside DP-SGD: it is skipped
    assert rec["calibration"]["skipped"].startswith("differential privacy")
    assert len(gen.sample(10, seed=0).patient_table) == 10


def test_timeline_example_loss_depends_on_each_patient_alone():
    """The batch loss DP-SGD clips is the mean of per-patient losses: no patient's length
    changes another's weight (the token-mean training loss does)."""
    import torch

    from healthsynth.data import load_timelines
    from healthsynth.generators.timeline_lm import TimelineLM
    from healthsynth.generators.timeline_lm._objective import build_model

    ds = load_timelines("nafld", max_patients=40, seed=3)
    gen = TimelineLM(perm_prob=0.0, **TINY)
    codec, objective, _ = gen._encode(ds, private=True)
    model = build_model(codec, n_embd=32, n_layer=2, n_head=2, dropout=0.0, seed=0)
    idx = np.array([0, 5, 9, 17])
    rng = np.random.default_rng(0)
    with torch.no_grad():
        batch = float(objective.example_loss(model, idx, rng).loss)
        alone = [float(objective.example_loss(model, idx[i : i + 1], rng).loss) for i in range(4)]
        token_mean = float(objective.loss(model, idx, rng).loss)
    assert batch == pytest.approx(np.mean(alone), rel=1e-5)
    assert token_mean != pytest.approx(batch, rel=1e-3)  # lengths differ: the two forms differ


@pytest.mark.parametrize(
    "shares",
    [[[0, 3], [2, 5]], [[0, 2, 3, 5], []]],
    ids=["both-workers-draw", "one-draw-is-empty"],
)
def test_data_parallel_dp_sgd_takes_the_single_process_step(opacus, tmp_path, shares):
    """Two gloo workers, each clipping its own rows and worker 0 alone adding the noise, take
    exactly the update of one process on the union of their rows (noise off to compare)."""
    import torch
    import torch.multiprocessing as mp

    from tests.generators._dp_ddp_worker import _model, updated_weights

    union = sorted(sum(shares, []))
    updated_weights(0, 1, "", [union], str(tmp_path / "one.pt"))
    store = tmp_path / "gloo-store"
    mp.spawn(updated_weights, args=(2, str(store), shares, str(tmp_path / "w{rank}.pt")), nprocs=2)
    one = torch.load(tmp_path / "one.pt")
    before = _model()
    for rank in (0, 1):
        got = torch.load(tmp_path / f"w{rank}.pt")
        for name, value in one.items():
            torch.testing.assert_close(got[name], value, rtol=1e-5, atol=1e-6)
    # and the step did move the weights (the comparison is not of two untouched models)
    assert any(not torch.equal(before.state_dict()[k], v) for k, v in one.items())
