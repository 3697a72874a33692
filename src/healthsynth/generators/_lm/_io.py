"""Writing and reading the GPT core as a Hugging Face folder, without ``transformers``.

A folder holds ``config.json`` (a GPT-2 config, see :mod:`._config`) and ``model.safetensors``
(the weights under their GPT-2 names; the tied ``lm_head.weight`` is left out, as
``transformers`` does). Folders written by ``transformers.GPT2LMHeadModel.save_pretrained`` —
healthsynth's format version 1 — have the same layout and load here unchanged. Reading for
sampling (:func:`load_numpy`) needs neither torch nor transformers.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from healthsynth.errors import ModelFolderError
from healthsynth.generators._lm._config import GPTConfig

if TYPE_CHECKING:
    from healthsynth.generators._lm._infer import NumpyGPT
    from healthsynth.generators._lm._model import GPT

__all__ = ["load_model", "load_numpy", "read_config", "read_weights", "save_model"]

# buffers older transformers versions wrote next to the weights (causal masks): not weights
_IGNORED_SUFFIXES = (".attn.bias", ".attn.masked_bias")


def save_model(model: Any, folder: Path) -> None:
    """Write ``config.json`` and ``model.safetensors`` of a GPT (torch or numpy) into ``folder``."""
    from safetensors.numpy import save_file

    from healthsynth.generators._lm._infer import as_numpy

    gpt = as_numpy(model)
    folder.mkdir(parents=True, exist_ok=True)
    weights = {k: np.ascontiguousarray(v) for k, v in gpt.w.items()}
    save_file(weights, str(folder / "model.safetensors"), metadata={"format": "pt"})
    (folder / "config.json").write_text(
        json.dumps(gpt.config.to_hf_dict(), indent=2), encoding="utf-8"
    )


def read_config(folder: Path, *, owner: Path | None = None) -> GPTConfig:
    """The :class:`GPTConfig` of a model folder (``owner``: the folder to name in errors)."""
    where = owner or folder
    path = folder / "config.json"
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ModelFolderError(
            f"model folder {where} is incomplete: model/config.json is missing; fit the model again"
        ) from None
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise ModelFolderError(
            f"model folder {where} is corrupted: model/config.json is not valid JSON ({e})"
        ) from None
    if not isinstance(data, dict):
        raise ModelFolderError(
            f"model folder {where} is corrupted: model/config.json is not an object"
        )
    return GPTConfig.from_hf_dict(data, source=f"model folder {where} (model/config.json)")


def read_weights(
    folder: Path, *, owner: Path | None = None
) -> tuple[GPTConfig, dict[str, np.ndarray]]:
    """The config and the checked weights of a model folder, as numpy arrays.

    Only JSON and safetensors are read: nothing is unpickled and no model code is imported
    from the folder. Anything that does not fit the config is refused with one sentence.
    """
    from safetensors import SafetensorError
    from safetensors.numpy import load_file

    from healthsynth.generators._folder import check_no_remote_code

    where = owner or folder
    check_no_remote_code(folder, where)  # any config asking for code, named before anything else
    path = folder / "model.safetensors"
    if not path.exists() or not (folder / "config.json").exists():
        raise ModelFolderError(
            f"model folder {where} is incomplete: model/config.json or model/model.safetensors "
            "is missing; fit the model again"
        )
    config = read_config(folder, owner=owner)
    try:
        weights = load_file(str(path))
    except (SafetensorError, OSError, ValueError, RuntimeError) as e:
        raise ModelFolderError(
            f"model folder {where} is corrupted: the weights could not be loaded ({e})"
        ) from None
    expected = config.shapes()
    head = weights.pop("lm_head.weight", None)
    for key in [k for k in weights if k.endswith(_IGNORED_SUFFIXES) and k not in expected]:
        weights.pop(key)
    missing = sorted(set(expected) - set(weights))
    extra = sorted(set(weights) - set(expected))
    wrong = sorted(k for k in expected if k in weights and weights[k].shape != expected[k])
    if missing or extra or wrong:
        what = (
            f"missing {missing[:3]}"
            if missing
            else f"unexpected {extra[:3]}"
            if extra
            else f"wrong shape for {wrong[:3]}"
        )
        raise ModelFolderError(
            f"model folder {where} is corrupted: the weights do not match model/config.json "
            f"({what})"
        )
    if head is not None and not np.array_equal(head, weights["transformer.wte.weight"]):
        raise ModelFolderError(
            f"model folder {where} holds an output head that is not tied to the token "
            "embedding, which the healthsynth GPT core does not support"
        )
    return config, {k: v.astype(np.float32, copy=False) for k, v in weights.items()}


def load_numpy(
    folder: Path, *, owner: Path | None = None, vocab_size: int | None = None
) -> NumpyGPT:
    """Read a GPT core for sampling (numpy; torch is not imported).

    ``vocab_size``: the size the owner's codec expects (refused when the weights differ).
    """
    from healthsynth.generators._lm._infer import NumpyGPT

    config, weights = read_weights(folder, owner=owner)
    if vocab_size is not None and config.vocab_size != vocab_size:
        raise ModelFolderError(
            f"model folder {owner or folder} is corrupted: the weights do not match generator.json"
        )
    return NumpyGPT(config, weights)


def load_model(folder: Path, *, owner: Path | None = None) -> GPT:
    """Read a GPT core as a torch module (for training or export)."""
    import torch

    from healthsynth.generators._lm._model import GPT

    config, weights = read_weights(folder, owner=owner)
    model = GPT(config)
    model.load_state_dict({k: torch.from_numpy(v) for k, v in weights.items()}, strict=False)
    model.eval()
    return model
