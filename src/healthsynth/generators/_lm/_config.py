"""The GPT core's settings, read from and written as a Hugging Face ``GPT2Config`` dict.

The dict written here is a complete, valid ``config.json`` for ``model_type: gpt2`` (no
``auto_map``, nothing that needs remote code), so ``transformers`` and serving engines such as
vLLM load an exported model as a stock GPT-2. Reading accepts only the GPT-2 variants the core
computes exactly; anything else is refused with one sentence. Nothing here imports torch.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from healthsynth.errors import ModelFolderError

__all__ = ["ACTIVATIONS", "GPTConfig"]

#: Hugging Face activation names the core computes, and how (``erf``, ``tanh`` or ``relu``).
ACTIVATIONS = {
    "gelu": "erf",
    "gelu_new": "tanh",
    "gelu_pytorch_tanh": "tanh",
    "gelu_fast": "tanh",
    "relu": "relu",
}

# GPT-2 options whose non-default values change the computation in ways the core does not follow
_FIXED = {
    "scale_attn_weights": True,
    "scale_attn_by_inverse_layer_idx": False,
    "add_cross_attention": False,
    "tie_word_embeddings": True,
}


@dataclass(frozen=True)
class GPTConfig:
    """Size and regularisation of one GPT core (the GPT-2 field names).

    Parameters
    ----------
    vocab_size, n_positions
        Vocabulary size and longest sequence (including the start token).
    n_embd, n_layer, n_head, n_inner
        Width, depth, attention heads and feed-forward width (``None``: ``4 * n_embd``).
    activation_function
        One of :data:`ACTIVATIONS`.
    resid_pdrop, embd_pdrop, attn_pdrop
        Dropout on residual branches, embeddings and attention weights.
    layer_norm_epsilon, initializer_range
        Layer-norm epsilon and the standard deviation of the initial weights.
    bos_token_id, eos_token_id, pad_token_id
        Special token ids (recorded for serving engines).
    """

    vocab_size: int
    n_positions: int
    n_embd: int = 96
    n_layer: int = 3
    n_head: int = 4
    n_inner: int | None = None
    activation_function: str = "gelu"
    resid_pdrop: float = 0.1
    embd_pdrop: float = 0.1
    attn_pdrop: float = 0.1
    layer_norm_epsilon: float = 1e-5
    initializer_range: float = 0.02
    bos_token_id: int = 1
    eos_token_id: int = 1
    pad_token_id: int = 0

    @property
    def inner(self) -> int:
        """The feed-forward width."""
        return self.n_inner if self.n_inner is not None else 4 * self.n_embd

    def shapes(self) -> dict[str, tuple[int, ...]]:
        """Every weight's GPT-2 name and shape (the tied ``lm_head.weight`` left out)."""
        d, inner = self.n_embd, self.inner
        out: dict[str, tuple[int, ...]] = {
            "transformer.wte.weight": (self.vocab_size, d),
            "transformer.wpe.weight": (self.n_positions, d),
        }
        for i in range(self.n_layer):
            p = f"transformer.h.{i}."
            out.update(
                {
                    p + "ln_1.weight": (d,),
                    p + "ln_1.bias": (d,),
                    p + "attn.c_attn.weight": (d, 3 * d),
                    p + "attn.c_attn.bias": (3 * d,),
                    p + "attn.c_proj.weight": (d, d),
                    p + "attn.c_proj.bias": (d,),
                    p + "ln_2.weight": (d,),
                    p + "ln_2.bias": (d,),
                    p + "mlp.c_fc.weight": (d, inner),
                    p + "mlp.c_fc.bias": (inner,),
                    p + "mlp.c_proj.weight": (inner, d),
                    p + "mlp.c_proj.bias": (d,),
                }
            )
        out["transformer.ln_f.weight"] = (d,)
        out["transformer.ln_f.bias"] = (d,)
        return out

    def with_dropout(self, p: float) -> GPTConfig:
        """The same model with every dropout set to ``p``."""
        return GPTConfig(**{**asdict(self), "resid_pdrop": p, "embd_pdrop": p, "attn_pdrop": p})

    def to_hf_dict(self) -> dict[str, Any]:
        """A ``config.json`` dict that ``transformers.GPT2Config`` reads as it is."""
        return {
            "architectures": ["GPT2LMHeadModel"],
            "model_type": "gpt2",
            **asdict(self),
            "n_inner": self.inner,
            **_FIXED,
            "reorder_and_upcast_attn": False,
            "use_cache": True,
            "dtype": "float32",
        }

    @classmethod
    def from_hf_dict(cls, data: dict[str, Any], *, source: Path | str) -> GPTConfig:
        """Read a GPT-2 ``config.json`` dict; refuse what the core cannot compute exactly."""
        if "auto_map" in data:
            raise ModelFolderError(
                f"{source} asks for custom model code (auto_map), which healthsynth never runs; "
                "use a model folder written by healthsynth or a stock GPT-2"
            )
        if data.get("model_type") != "gpt2":
            raise ModelFolderError(
                f"{source} describes a '{data.get('model_type')}' model; the healthsynth engine "
                "reads GPT-2 folders only (model_type gpt2)"
            )
        for key, want in _FIXED.items():
            if data.get(key, want) != want:
                raise ModelFolderError(
                    f"{source} sets {key}={data.get(key)!r}, which the healthsynth GPT core does "
                    f"not support (it needs {want!r})"
                )
        act = data.get("activation_function", "gelu_new")
        if act not in ACTIVATIONS:
            raise ModelFolderError(
                f"{source} uses the activation '{act}'; supported: {', '.join(ACTIVATIONS)}"
            )
        try:
            return cls(
                vocab_size=int(data["vocab_size"]),
                n_positions=int(data["n_positions"]),
                n_embd=int(data["n_embd"]),
                n_layer=int(data["n_layer"]),
                n_head=int(data["n_head"]),
                n_inner=None if data.get("n_inner") is None else int(data["n_inner"]),
                activation_function=act,
                resid_pdrop=float(data.get("resid_pdrop", 0.1)),
                embd_pdrop=float(data.get("embd_pdrop", 0.1)),
                attn_pdrop=float(data.get("attn_pdrop", 0.1)),
                layer_norm_epsilon=float(data.get("layer_norm_epsilon", 1e-5)),
                initializer_range=float(data.get("initializer_range", 0.02)),
                bos_token_id=_token(data.get("bos_token_id"), 1),
                eos_token_id=_token(data.get("eos_token_id"), 1),
                pad_token_id=_token(data.get("pad_token_id"), 0),
            )
        except (KeyError, TypeError, ValueError) as e:
            raise ModelFolderError(f"{source} is not a readable GPT-2 config ({e!r})") from None


def _token(value: Any, default: int) -> int:
    if isinstance(value, list):  # some configs list several end tokens
        value = value[0] if value else None
    return default if value is None else int(value)
