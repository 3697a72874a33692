"""Discrete Bayesian network baseline, through ``pgmpy``.

**Method.** Every column becomes a discrete variable: categories as they are, numbers cut into
quantile bins (a number with few distinct values keeps one state per value), and a missing
value as a state of its own. The structure is a directed acyclic graph found by hill climbing
on the BIC score, each variable having at most ``max_indegree`` parents; the probability
tables are Bayesian estimates with a BDeu prior, so unseen combinations keep a little mass.
Sampling goes down the graph (forward simulation); a number is then drawn uniformly inside its
bin, and rounded and clipped like every generator's output.

**Library.** ``pgmpy`` (checked with 1.0.0), MIT licence (read from the installed package
metadata). Install with ``pip install "healthsynth[baselines]"``.

**How it is used here.** Structure: ``HillClimbSearch(...).estimate(scoring_method="bic-d")``.
Parameters: ``BayesianEstimator.estimate_cpd(prior_type="BDeu")`` for every node; pgmpy 1.0's
``fit`` rebuilds the network from its edges and so silently skips variables without any edge,
which is why each table is estimated explicitly. Sampling: ``simulate``, whose evidence
(rejection inside pgmpy, exact) is used for conditions that fix one value of a column kept as
one state per value (categories, few-valued numbers); other conditions (number ranges, several
values) are met by rejection sampling on the decoded rows. Before using evidence, its
probability is computed exactly by variable elimination, and a condition rarer than one row in
a thousand is refused instead of letting pgmpy loop. pgmpy seeds NumPy's global random state;
the state is restored after each call. The model folder is plain JSON (``model/network.json``:
edges, probability tables, state names; ``model/bins.json``), no pickle.

**Limitations.** Binning loses detail inside a bin (uniform there), and the bins follow the
training quantiles, so tails are coarse. At most ``max_indegree`` parents per variable means
higher-order interactions are approximated. Importing pgmpy also imports PyTorch and calls
``logging.basicConfig``; healthsynth undoes the latter so the root logger stays as it was.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from types import ModuleType
from typing import Any, ClassVar

import numpy as np
import pandas as pd

from healthsynth.errors import ConditionError, ModelFolderError
from healthsynth.generators._conditions import Condition
from healthsynth.generators._library import (
    MIN_ACCEPTANCE,
    LibraryGenerator,
    model_file,
    preserved_global_rng,
    quiet_logger,
    require,
)

__all__ = ["BayesianNetwork"]


def _whole(minimum: int) -> tuple[str, Any]:
    return (
        f"a whole number >= {minimum}",
        lambda v: isinstance(v, int) and not isinstance(v, bool) and v >= minimum,
    )


class BayesianNetwork(LibraryGenerator):
    """Discrete Bayesian network with a learned structure (pgmpy).

    Parameters
    ----------
    bins
        Quantile bins per number; a number with at most this many distinct values keeps one
        state per value.
    max_indegree
        Most parents a variable may have.
    equivalent_sample_size
        Strength of the BDeu prior on the probability tables, in rows.
    seed
        Not used in fitting (hill climbing is deterministic); kept for a uniform interface.
        Sampling takes its own ``seed``.
    """

    name = "bayesian-network"
    _module = "pgmpy.models"
    _package = "pgmpy"
    _extra = "baselines"
    _params: ClassVar[dict[str, tuple[str, Any]]] = {
        "bins": _whole(2),
        "max_indegree": _whole(0),
        "equivalent_sample_size": (
            "a positive number",
            lambda v: isinstance(v, (int, float)) and not isinstance(v, bool) and v > 0,
        ),
        "seed": _whole(0),
    }

    def __init__(
        self,
        *,
        bins: int = 10,
        max_indegree: int = 2,
        equivalent_sample_size: float = 5,
        seed: int = 0,
    ) -> None:
        self.bins = bins
        self.max_indegree = max_indegree
        self.equivalent_sample_size = equivalent_sample_size
        self.seed = seed

    # -- discretization -------------------------------------------------------------------------
    def _discretize(self, frame: pd.DataFrame) -> tuple[pd.DataFrame, dict[str, Any]]:
        enc = self.encoder_
        states: dict[str, np.ndarray] = {}
        bins: dict[str, Any] = {}
        for s in enc.specs:
            name = s["name"]
            if s["type"] == "category":
                states[name] = frame[name].to_numpy(np.int64)
            elif s["type"] == "number":
                miss = frame[s["flag"]].to_numpy(bool) if s["flag"] else np.zeros(len(frame), bool)
                edges: dict[str, Any]
                if s["fixed"] is not None:
                    edges = {"values": [s["fixed"]]}
                    idx = np.zeros(len(frame), np.int64)
                    k = 1
                else:
                    x = frame[name].to_numpy(float)
                    present = x[~miss]
                    distinct = np.unique(present)
                    if len(distinct) <= self.bins:
                        # one state per value
                        edges = {"values": distinct.tolist()}
                        idx = np.searchsorted(distinct, x).clip(0, len(distinct) - 1)
                        k = len(distinct)
                    else:
                        # quantile bins [cut_i, cut_i+1), the last one closed; the cuts are
                        # training values, so every bin holds at least one of them
                        cuts = np.unique(
                            np.quantile(
                                present, np.linspace(0, 1, self.bins + 1), method="inverted_cdf"
                            )
                        )
                        edges = {"edges": cuts.tolist()}
                        idx = np.searchsorted(cuts[1:-1], x, side="right")
                        k = len(cuts) - 1
                # missing is one more state
                edges["missing_state"] = k if s["flag"] else None
                states[name] = np.where(miss, k, idx).astype(np.int64)
                bins[name] = edges
        return pd.DataFrame(states), bins

    def _undiscretize(self, states: pd.DataFrame, rng: np.random.Generator) -> pd.DataFrame:
        enc = self.encoder_
        out: dict[str, Any] = {}
        n = len(states)
        for s in enc.specs:
            name = s["name"]
            if s["type"] == "category":
                out[name] = states[name].to_numpy(np.int64)
            elif s["type"] == "number":
                b = self.bins_[name]
                st = states[name].to_numpy(np.int64)
                miss = np.zeros(n, bool)
                if b["missing_state"] is not None:
                    miss = st == b["missing_state"]
                safe = np.where(miss, 0, st)
                if "values" in b:
                    x = np.asarray(b["values"], float)[np.clip(safe, 0, len(b["values"]) - 1)]
                else:
                    cuts = np.asarray(b["edges"], float)
                    safe = np.clip(safe, 0, len(cuts) - 2)
                    lo, hi = cuts[safe], cuts[safe + 1]
                    if self.encoder_.schema[name].kind == "integer":
                        # whole numbers of [lo, hi), the last bin closed
                        last = safe == len(cuts) - 2
                        top = np.where(last, np.floor(hi), np.ceil(hi) - 1)
                        bottom = np.ceil(lo)
                        top = np.maximum(top, bottom)
                        x = np.floor(bottom + rng.random(n) * (top - bottom + 1))
                        x = np.minimum(x, top)
                    else:
                        x = lo + rng.random(n) * (hi - lo)
                if s["fixed"] is None:
                    out[name] = np.where(miss, s["fill"], x)
                if s["flag"]:
                    out[s["flag"]] = miss.astype(np.int64)
        return pd.DataFrame(out, columns=enc.columns, index=range(n))

    # -- fit / sample ---------------------------------------------------------------------------
    def _fit_library(self, lib: ModuleType, frame: pd.DataFrame, data: pd.DataFrame) -> None:
        estimators = require(
            "pgmpy.estimators",
            package=self._package,
            extra=self._extra,
            what=f"the '{self.name}' generator",
        )
        states, self.bins_ = self._discretize(frame)
        nodes = list(states.columns)
        with preserved_global_rng():
            if len(nodes) > 1:
                # the search runs on integer node names: BIC scores an edge and its reverse
                # alike, and pgmpy breaks such ties by set order, which for text names changes
                # with each process's string-hash seed (the same data and seed gave different
                # networks in different processes); integers hash the same everywhere
                numbered = states.set_axis(range(len(nodes)), axis=1)
                dag = estimators.HillClimbSearch(numbered).estimate(
                    scoring_method="bic-d", max_indegree=self.max_indegree, show_progress=False
                )
                edges = [(nodes[a], nodes[b]) for a, b in sorted(dag.edges())]
            else:
                edges = []
            model = lib.DiscreteBayesianNetwork()
            model.add_nodes_from(nodes)
            model.add_edges_from(edges)
            est = estimators.BayesianEstimator(model, states)
            # the estimator rebuilds the network from its edges, losing lone nodes
            est.model.add_nodes_from(nodes)
            cpds = [
                est.estimate_cpd(
                    node,
                    prior_type="BDeu",
                    equivalent_sample_size=self.equivalent_sample_size,
                )
                for node in nodes
            ]
            model.add_cpds(*cpds)
            if nodes:
                model.check_model()
        self.network_ = model
        self._evidence_p: dict[tuple[Any, ...], float] = {}

    def _extra_record(self) -> dict[str, Any]:
        return {"edges": [list(map(str, e)) for e in self.network_.edges()]}

    def _evidence(self, conds: Mapping[str, Condition]) -> dict[str, int]:
        ev: dict[str, int] = {}
        nodes = set(self.network_.nodes())
        for name, cond in conds.items():
            if name not in nodes:
                continue
            s = self.encoder_.spec(name)
            if s["type"] == "category" and cond.values is not None:
                codes = self.encoder_.codes_satisfying(name, cond)
                if len(codes) == 1:
                    ev[name] = codes[0]
            elif s["type"] == "number" and cond.low == cond.high:
                # a number kept as one state per value: fixing a value is fixing a state
                values = self.bins_[name].get("values", [])
                if cond.low in values:
                    ev[name] = values.index(cond.low)
        return ev

    def _check_evidence(self, ev: dict[str, int]) -> None:
        key = tuple(sorted(ev.items()))
        if key not in self._evidence_p:
            inference = require(
                "pgmpy.inference",
                package=self._package,
                extra=self._extra,
                what=f"the '{self.name}' generator",
            )
            with preserved_global_rng():
                q = inference.VariableElimination(self.network_).query(
                    list(ev), joint=True, show_progress=False
                )
                self._evidence_p[key] = float(q.get_value(**ev))
        p = self._evidence_p[key]
        if p < MIN_ACCEPTANCE:
            described = " and ".join(f"{k} = {self._value(k, v)!r}" for k, v in ev.items())
            raise ConditionError(
                f"the '{self.name}' model gives {described} a probability of {p:.2g}, too "
                "rare to sample; loosen the conditions"
            )

    def _value(self, name: str, state: int) -> Any:
        if self.encoder_.spec(name)["type"] == "number":
            return self.bins_[name]["values"][state]
        cats = list(self.encoder_.schema[name].categories or ())
        return cats[state] if state < len(cats) else None

    def _draw(
        self, lib: ModuleType, m: int, seed: int, conds: Mapping[str, Condition]
    ) -> pd.DataFrame:
        ev = self._evidence(conds)
        if ev:
            self._check_evidence(ev)
        # pgmpy warns for every table whose probabilities sum to 1 only up to float rounding
        # (it renormalizes them itself), i.e. on nearly every draw
        with preserved_global_rng(), quiet_logger("pgmpy"):
            if len(self.network_.nodes()) == 0:
                states = pd.DataFrame(index=range(m))
            else:
                states = self.network_.simulate(
                    n_samples=m, evidence=ev or None, seed=seed, show_progress=False
                )
        frame = self._undiscretize(states.reset_index(drop=True), np.random.default_rng(seed))
        return self.encoder_.decode(frame)

    # -- persistence ----------------------------------------------------------------------------
    def _save_model(self, folder: Path) -> None:
        net = self.network_
        cpds = []
        for cpd in net.get_cpds():
            cpds.append(
                {
                    "variable": cpd.variable,
                    "evidence": list(cpd.variables[1:]),
                    "cardinality": [int(c) for c in cpd.cardinality],
                    "values": np.asarray(cpd.get_values(), float).tolist(),
                    "state_names": {v: [int(x) for x in cpd.state_names[v]] for v in cpd.variables},
                }
            )
        doc = {"nodes": list(net.nodes()), "edges": [list(e) for e in net.edges()], "cpds": cpds}
        (folder / "network.json").write_text(json.dumps(doc), encoding="utf-8")
        (folder / "bins.json").write_text(json.dumps(self.bins_), encoding="utf-8")

    def _load_model(self, lib: ModuleType, folder: Path) -> None:
        factors = require(
            "pgmpy.factors.discrete",
            package=self._package,
            extra=self._extra,
            what=f"the '{self.name}' generator",
        )
        try:
            doc = json.loads(model_file(folder, "network.json").read_text(encoding="utf-8"))
            self.bins_ = json.loads(model_file(folder, "bins.json").read_text(encoding="utf-8"))
            model = lib.DiscreteBayesianNetwork()
            model.add_nodes_from(doc["nodes"])
            model.add_edges_from([tuple(e) for e in doc["edges"]])
            for c in doc["cpds"]:
                model.add_cpds(
                    factors.TabularCPD(
                        variable=c["variable"],
                        variable_card=c["cardinality"][0],
                        values=c["values"],
                        evidence=c["evidence"] or None,
                        evidence_card=c["cardinality"][1:] or None,
                        state_names=c["state_names"],
                    )
                )
            if doc["nodes"]:
                model.check_model()
        except (json.JSONDecodeError, KeyError, TypeError, ValueError) as e:
            raise ModelFolderError(
                f"model folder {folder.parent} is corrupted: model/network.json cannot be read "
                f"({e}); fit the model again"
            ) from None
        self.network_ = model
        self._evidence_p = {}
