"""Gaussian copula baseline, through SDV's ``GaussianCopulaSynthesizer``.

**Method.** Each column is mapped to a standard normal through its own fitted marginal (a
parametric distribution per number, an interval of the unit line per category), and the
dependence between columns is one correlation matrix of those normal scores. Sampling draws
correlated normal scores and maps them back.

**Library.** ``sdv`` (Synthetic Data Vault), built on ``copulas`` and ``rdt``; checked with
sdv 1.38.5, copulas 0.14.1 and rdt 1.22.0. All three are under the Business Source License 1.1
(read from the installed package metadata and licence files): production use is allowed except
offering a commercial synthetic-data service (for rdt: a data-transform service) built on them;
each release converts to the MIT licence four years after it came out. Install with
``pip install "healthsynth[baselines-bsl]"``.

**How it is used here.** SDV gets the table from :class:`~._encoder.TableEncoder` (numbers with
missing values imputed plus a 0/1 missing flag, categories as integer codes) and metadata built
from our schema, not detected: numbers are ``numerical``, codes and flags ``categorical``. The
missing flags are modelled jointly with everything else, so missingness can follow other
columns. Conditions are met by rejection sampling from the fitted model (SDV's own conditional
sampler always prints a progress bar, and filters its rows afterwards all the same). The model
folder holds SDV's own save of the synthesizer (``model/synthesizer.pkl``, a cloudpickle
file), so :meth:`load` refuses the folder unless called with ``trust_pickle=True``
(``--trust-pickle``).

**Limitations.** A single correlation matrix captures monotone, pairwise dependence only:
interactions, non-monotone relations and multi-modal joint shapes are lost. Categories sit on
an arbitrary order of the unit line. Importing SDV creates a folder with a logging config file
in the user's data directory (``platformdirs.user_data_dir("sdv")``); SDV writes no log file
unless that config is edited.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from types import ModuleType
from typing import Any, ClassVar

import pandas as pd

from healthsynth.generators._conditions import Condition
from healthsynth.generators._library import LibraryGenerator, model_file, require

__all__ = ["GaussianCopula"]

_DISTRIBUTIONS = ("norm", "beta", "truncnorm", "uniform", "gamma", "gaussian_kde")


class GaussianCopula(LibraryGenerator):
    """Gaussian copula over per-column marginals (SDV ``GaussianCopulaSynthesizer``).

    The model folder holds a pickle, and unpickling runs code: ``load`` refuses it unless
    called with ``trust_pickle=True``, which you should pass only for folders you saved
    yourself.

    Parameters
    ----------
    default_distribution
        Marginal fitted to every number: one of ``norm``, ``beta`` (SDV's default),
        ``truncnorm``, ``uniform``, ``gamma``, ``gaussian_kde``.
    seed
        Not used in fitting (SDV fits this model deterministically); kept for a uniform
        interface. Sampling takes its own ``seed``.
    """

    name = "gaussian-copula"
    pickled = True
    _pickle_file = "synthesizer.pkl"
    _module = "sdv.single_table"
    _package = "sdv"
    _extra = "baselines-bsl"
    _params: ClassVar[dict[str, tuple[str, Any]]] = {
        "default_distribution": (
            f"one of {', '.join(_DISTRIBUTIONS)}",
            lambda v: v in _DISTRIBUTIONS,
        ),
        "seed": ("a whole number", lambda v: isinstance(v, int) and not isinstance(v, bool)),
    }

    def __init__(self, *, default_distribution: str = "beta", seed: int = 0) -> None:
        self.default_distribution = default_distribution
        self.seed = seed

    def _fit_library(self, lib: ModuleType, frame: pd.DataFrame, data: pd.DataFrame) -> None:
        metadata_mod = require(
            "sdv.metadata", package="sdv", extra=self._extra, what=f"the '{self.name}' generator"
        )
        enc = self.encoder_
        columns: dict[str, dict[str, str]] = {}
        for name in enc.columns:
            if name in enc.numbers:
                columns[name] = {"sdtype": "numerical", "computer_representation": "Float"}
            else:
                columns[name] = {"sdtype": "categorical"}
        metadata = metadata_mod.Metadata.load_from_dict({"tables": {"table": {"columns": columns}}})
        synth = lib.GaussianCopulaSynthesizer(
            metadata,
            enforce_min_max_values=True,
            enforce_rounding=False,
            default_distribution=self.default_distribution,
        )
        synth.fit(frame)
        self.synthesizer_ = synth

    def _draw(
        self, lib: ModuleType, m: int, seed: int, conds: Mapping[str, Condition]
    ) -> pd.DataFrame:
        synth = self.synthesizer_
        # reset the reverse transformers, then seed the copula: same seed, same rows
        synth.reset_sampling()
        synth._set_random_state(seed)
        return self.encoder_.decode(synth.sample(m))

    def _save_model(self, folder: Path) -> None:
        self.synthesizer_.save(str(folder / self._pickle_file))

    def _load_model(self, lib: ModuleType, folder: Path) -> None:
        utils = require(
            "sdv.utils", package="sdv", extra=self._extra, what=f"the '{self.name}' generator"
        )
        self.synthesizer_ = utils.load_synthesizer(str(model_file(folder, self._pickle_file)))
