"""CTGAN and TVAE baselines, through the ``ctgan`` package (used directly, not SDV's wrappers).

**Methods.** Both models first apply mode-specific normalization: each number is described by
the mode of a Bayesian Gaussian mixture it falls in plus its position inside that mode, each
category is one-hot. CTGAN (Xu et al., NeurIPS 2019) trains a conditional GAN whose generator is
asked, during training, for rows of a given category of a randomly chosen discrete column
("training by sampling"), which helps it learn rare categories. TVAE (same paper) is a
variational autoencoder over the same representation.

**Library.** ``ctgan`` (checked with 0.12.1), under the Business Source License 1.1 (read from
the installed package metadata and licence file): production use is allowed except offering a
commercial synthetic-data creation service built on it; each release converts to the MIT
licence four years after it came out. It brings ``rdt`` (1.22.0, same licence) and PyTorch.
Install with ``pip install "healthsynth[baselines-bsl]"``.

**How it is used here.** CTGAN refuses missing numbers and TVAE fails on them when sampling,
so the table goes through :class:`~._encoder.TableEncoder`: each number with missing values is
imputed with its training median and gets a 0/1 missing flag, learned as a discrete column;
decoding puts the missing values back where the flag says so. Categories are integer codes.
Training and sampling are seeded with the library's ``set_random_state`` (it swaps NumPy's
and PyTorch's global random states in and out around each call), so a seeded ``sample``
reproduces exactly. A condition fixing one category of one column is passed to CTGAN's own
conditional sampling, which raises the share of matching rows but does not guarantee it;
rejection sampling then keeps only rows that satisfy every condition (TVAE has no conditional
sampling, so it uses rejection alone). The model folder holds the library's own save
(``model/model.pkl``, a ``torch.save`` pickle of the whole object), so :meth:`load` refuses the
folder unless called with ``trust_pickle=True`` (``--trust-pickle``).

**Limitations.** Both need many epochs (the library default is 300) and are slow on a CPU
for large tables. GAN training is unstable and has no stopping rule here: ``epochs`` is what
runs. They run on a GPU only with ``enable_gpu=True``, because the library seeds the CPU's
random generators and not the GPU's, so seeded sampling is exact on the CPU only.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from types import ModuleType
from typing import Any, ClassVar

import pandas as pd

from healthsynth.generators._conditions import Condition
from healthsynth.generators._library import LibraryGenerator, model_file

__all__ = ["CTGAN", "TVAE"]


def _whole(minimum: int) -> tuple[str, Any]:
    return (
        f"a whole number >= {minimum}",
        lambda v: isinstance(v, int) and not isinstance(v, bool) and v >= minimum,
    )


class _CtganFamily(LibraryGenerator):
    pickled = True
    _pickle_file = "model.pkl"
    _module = "ctgan"
    _package = "ctgan"
    _extra = "baselines-bsl"

    def __init__(
        self, *, epochs: int = 300, batch_size: int = 500, enable_gpu: bool = False, seed: int = 0
    ) -> None:
        self.epochs = epochs
        self.batch_size = batch_size
        self.enable_gpu = enable_gpu
        self.seed = seed

    def _make(self, lib: ModuleType) -> Any:
        raise NotImplementedError

    def _fit_library(self, lib: ModuleType, frame: pd.DataFrame, data: pd.DataFrame) -> None:
        model = self._make(lib)
        model.set_random_state(self.seed)
        model.fit(frame, discrete_columns=list(self.encoder_.categories))
        self.model_ = model

    def _extra_record(self) -> dict[str, Any]:
        return {"epochs": self.epochs}

    def _native(self, conds: Mapping[str, Condition]) -> dict[str, Any]:
        return {}

    def _draw(
        self, lib: ModuleType, m: int, seed: int, conds: Mapping[str, Condition]
    ) -> pd.DataFrame:
        self.model_.set_random_state(seed)
        frame = self.model_.sample(m, **self._native(conds))
        return self.encoder_.decode(frame)

    def _save_model(self, folder: Path) -> None:
        self.model_.save(str(folder / self._pickle_file))

    def _load_model(self, lib: ModuleType, folder: Path) -> None:
        pickled = model_file(folder, self._pickle_file)
        model = getattr(lib, type(self).__name__).load(str(pickled))
        if not self.enable_gpu:
            # the library's load moves the model to a GPU whenever one is visible
            model.set_device("cpu")
        self.model_ = model


class CTGAN(_CtganFamily):
    """Conditional tabular GAN (``ctgan.CTGAN``).

    The model folder holds a pickle, and unpickling runs code: ``load`` refuses it unless
    called with ``trust_pickle=True``, which you should pass only for folders you saved
    yourself.

    Parameters
    ----------
    epochs
        Training epochs (the library's default is 300).
    batch_size
        Rows per training step; a multiple of 10 (the library's ``pac``, the number of rows the
        discriminator judges together).
    enable_gpu
        Train and sample on a GPU when PyTorch sees one (the library's own default). Off here
        because the library seeds only the CPU's random generators: on a GPU, CTGAN's
        Gumbel-softmax draws are not seeded and a seeded ``sample`` does not reproduce.
    seed
        Seed for initialization and training.
    """

    name = "ctgan"
    _params: ClassVar[dict[str, tuple[str, Any]]] = {
        "epochs": _whole(1),
        "batch_size": (
            "a positive multiple of 10",
            lambda v: isinstance(v, int) and not isinstance(v, bool) and v > 0 and v % 10 == 0,
        ),
        "enable_gpu": ("True or False", lambda v: isinstance(v, bool)),
        "seed": _whole(0),
    }

    def _make(self, lib: ModuleType) -> Any:
        return lib.CTGAN(epochs=self.epochs, batch_size=self.batch_size, enable_gpu=self.enable_gpu)

    def _native(self, conds: Mapping[str, Condition]) -> dict[str, Any]:
        # CTGAN conditions on one category of one discrete column
        for name, cond in conds.items():
            if name not in self.encoder_.categories or cond.values is None:
                continue
            codes = self.encoder_.codes_satisfying(name, cond)
            if len(codes) == 1:
                return {"condition_column": name, "condition_value": codes[0]}
        return {}


class TVAE(_CtganFamily):
    """Tabular variational autoencoder (``ctgan.TVAE``).

    The model folder holds a pickle, and unpickling runs code: ``load`` refuses it unless
    called with ``trust_pickle=True``, which you should pass only for folders you saved
    yourself.

    Parameters
    ----------
    epochs
        Training epochs (the library's default is 300).
    batch_size
        Rows per training step.
    enable_gpu
        Train and sample on a GPU when PyTorch sees one (the library's own default). Off here so
        that seeded samples are reproducible as on every other generator; exact reproduction on
        a GPU is not checked.
    seed
        Seed for initialization and training.
    """

    name = "tvae"
    _params: ClassVar[dict[str, tuple[str, Any]]] = {
        "epochs": _whole(1),
        "batch_size": _whole(1),
        "enable_gpu": ("True or False", lambda v: isinstance(v, bool)),
        "seed": _whole(0),
    }

    def _make(self, lib: ModuleType) -> Any:
        return lib.TVAE(epochs=self.epochs, batch_size=self.batch_size, enable_gpu=self.enable_gpu)
