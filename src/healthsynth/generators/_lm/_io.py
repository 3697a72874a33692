"""Writing and reading the GPT core as a Hugging Face folder, without ``transformers``.

A folder holds ``config.json`` (a GPT-2 config, see :mod:`._config`) and ``model.safetensors``
(the weights under their GPT-2 names; the tied ``lm_head.weight`` is left out, as
``transformers`` does). Folders written by ``transformers.GPT2LMHeadModel.save_pretrained`` —
healthsynth's format version 1 — have the same layout and load here unchanged.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING

from healthsynth.errors import ModelFolderError
from healthsynth.generators._lm._config import GPTConfig

if TYPE_CHECKING:
    from healthsynth.generators._lm._model import GPT

__all__ = ["load_model", "read_config", "save_model"]

# buffers older transformers versions wrote next to the weights (causal masks): not weights
_IGNORED_SUFFIXES = (".attn.bias", ".attn.masked_bias")


def save_model(model: GPT, folder: Path) -> None:
    """Write ``config.json`` and ``model.safetensors`` into ``folder`` (created if needed)."""
    from safetensors.torch import save_file

    folder.mkdir(parents=True, exist_ok=True)
    weights = {
        k: v.detach().contiguous() for k, v in model.state_dict().items() if k != "lm_head.weight"
    }
    save_file(weights, str(folder / "model.safetensors"), metadata={"format": "pt"})
    (folder / "config.json").write_text(
        json.dumps(model.config.to_hf_dict(), indent=2), encoding="utf-8"
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


def load_model(folder: Path, *, owner: Path | None = None) -> GPT:
    """Read a GPT core from ``folder``; refuse with one sentence what does not fit.

    Only JSON and safetensors are read: nothing is unpickled and no model code is imported
    from the folder.
    """
    import torch
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    from healthsynth.generators._lm._model import GPT

    where = owner or folder
    config = read_config(folder, owner=owner)
    path = folder / "model.safetensors"
    if not path.exists():
        raise ModelFolderError(
            f"model folder {where} is incomplete: model/model.safetensors is missing; fit the "
            "model again"
        )
    try:
        weights = load_file(str(path))
    except (SafetensorError, OSError, ValueError, RuntimeError) as e:
        raise ModelFolderError(
            f"model folder {where} is corrupted: the weights could not be loaded ({e})"
        ) from None
    model = GPT(config)
    expected = {k: v for k, v in model.state_dict().items() if k != "lm_head.weight"}
    head = weights.pop("lm_head.weight", None)
    for key in [k for k in weights if k.endswith(_IGNORED_SUFFIXES) and k not in expected]:
        weights.pop(key)
    missing = sorted(set(expected) - set(weights))
    extra = sorted(set(weights) - set(expected))
    wrong = sorted(k for k in expected if k in weights and weights[k].shape != expected[k].shape)
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
    if head is not None and not torch.equal(head, weights["transformer.wte.weight"]):
        raise ModelFolderError(
            f"model folder {where} holds an output head that is not tied to the token "
            "embedding, which the healthsynth GPT core does not support"
        )
    model.load_state_dict({k: v.to(expected[k].dtype) for k, v in weights.items()}, strict=False)
    model.eval()
    return model
