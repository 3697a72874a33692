"""The shared behaviour suite (healthsynth.testing) over every registered generator, both kinds."""

from __future__ import annotations

import warnings

import pytest

from healthsynth.data import infer_schema, load_timelines
from healthsynth.errors import NotFittedError, ParameterError
from healthsynth.generators import registry
from healthsynth.generators.marginals import IndependentMarginals
from healthsynth.testing import (
    CHECKS,
    check_fit,
    check_generator,
    check_seeds,
    check_settings,
    check_unfitted,
)
from tests.helpers import extra_or_skip, real

FAST = {
    "tabular-lm": {"epochs": 3, "n_embd": 32, "n_layer": 1, "n_head": 2, "privacy_stop": False},
    "ctgan": {"epochs": 2},
    "tvae": {"epochs": 2},
    "bayesian-network": {"bins": 5},
    "timeline-lm": {"epochs": 2, "n_embd": 32, "n_layer": 1, "n_head": 2, "token_budget": 6000},
}


def _data(name: str) -> tuple[object, dict]:
    if registry.kind(name) == "timelines":
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            ds = load_timelines("nafld", max_patients=300, seed=3)
        return ds, {"code_map": "nafld"}
    df = real("survival/colon", 400)
    return df, {"schema": infer_schema(df, target="status", sensitive=["sex"])}


@pytest.fixture(scope="module", params=registry.names())
def fitted(request, tmp_path_factory):
    name = request.param
    params = dict(FAST.get(name, {}))
    data, fit_params = _data(name)
    if name == "prompted-llm":
        # a real chat-completions server on 127.0.0.1 that writes rows like the data's
        from healthsynth.llm.testing import ChatServer, RowReplier

        server = ChatServer(RowReplier(data, flip={"status": 0.1})).__enter__()
        request.addfinalizer(lambda: server.__exit__(None, None, None))
        log = tmp_path_factory.mktemp("llm") / "audit.jsonl"
        params.update(endpoint=server.url, llm_model="test-model", audit_log=str(log))
    gen = registry.create(name, **params)
    check_settings(gen)
    check_unfitted(gen)
    with extra_or_skip(), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        check_fit(gen, data, **fit_params)
    return gen, data


#: Known departures from the contract, each with its reason (strict: a fix makes them fail).
KNOWN: dict[tuple[str, str], str] = {}


@pytest.mark.parametrize("check", CHECKS, ids=lambda c: c.__name__)
def test_contract(fitted, check):
    gen, data = fitted
    reason = KNOWN.get((gen.name, check.__name__))
    if reason is not None:
        with pytest.raises(AssertionError):
            check(gen, data)
        pytest.xfail(reason)
    check(gen, data)


def test_one_registry_finds_both_kinds_without_importing_them():
    assert {"tabular-lm", "timeline-lm", "marginals"} <= set(registry.names())
    assert registry.names(kind="timelines") == ["timeline-lm"]
    assert "timeline-lm" not in registry.names(kind="table")
    assert registry.kind("tabular-lm") == "table" and registry.kind("timeline-lm") == "timelines"
    with pytest.raises(ParameterError, match="known generators: .*tabular-lm"):
        registry.get("nope")


def test_unfitted_use_says_to_fit_first():
    for name in registry.names():
        with pytest.raises(NotFittedError, match="call fit"):
            registry.create(name).sample(5)


class _FitSeedWhenNone(IndependentMarginals):
    """seed=None means the fit's seed (what timeline-lm did before one contract)."""

    def sample(self, n, *, conditions=None, seed=None):
        return super().sample(n, conditions=conditions, seed=self.seed if seed is None else seed)


class _Mutates(IndependentMarginals):
    def fit(self, data, *, schema=None):
        data["glu"] = 0
        return super().fit(data, schema=schema)


def test_the_suite_passes_a_good_generator_and_catches_broken_ones():
    df = real("MASS/Pima.tr")
    check_generator(IndependentMarginals(seed=0), df)
    broken = _FitSeedWhenNone(seed=0).fit(df)
    with pytest.raises(AssertionError, match="check_seeds: seed=None gave the same data twice"):
        check_seeds(broken)
    with pytest.raises(AssertionError, match="check_fit: fit changed the data"):
        check_fit(_Mutates(), df.copy())
