"""The GPT core: a small causal transformer with the Hugging Face GPT-2 parameter layout.

Parameter names and shapes are GPT-2's (``transformer.wte``, ``transformer.wpe``,
``transformer.h.N.{ln_1,attn.c_attn,attn.c_proj,ln_2,mlp.c_fc,mlp.c_proj}``, ``transformer.ln_f``;
``lm_head`` tied to ``wte``; the projection weights stored input × output as GPT-2's ``Conv1D``
does), and the computation is GPT-2's, so the saved weights load in ``transformers`` as a stock
``GPT2LMHeadModel`` and back here without conversion. As in GPT-2, a position's *token type*
is looked up in the token embedding and added to its input: the LM paths use it to mark which
slot or state comes next.
"""

from __future__ import annotations

import math

import torch
from torch import nn
from torch.nn import functional as F  # noqa: N812

from healthsynth.generators._lm._config import ACTIVATIONS, GPTConfig

__all__ = ["ACTIVATION", "GPT", "build_gpt"]

#: The MLP activation of a new model: GELU with the tanh approximation (GPT-2's own). Sampling
#: computes it in numpy (:mod:`._infer`) about three times faster than the exact GELU, whose
#: erf alone took more time than the layer's two matrix products; models saved with the exact
#: ``gelu`` still load and sample with it (docs/benchmark-results/engine/activation).
ACTIVATION = "gelu_new"


class _Conv1D(nn.Module):
    """GPT-2's projection: ``x @ weight + bias`` with ``weight`` of shape (inputs, outputs)."""

    def __init__(self, n_in: int, n_out: int) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.empty(n_in, n_out))
        self.bias = nn.Parameter(torch.zeros(n_out))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.addmm(self.bias, x.reshape(-1, x.shape[-1]), self.weight).view(
            *x.shape[:-1], -1
        )


class _Attention(nn.Module):
    def __init__(self, cfg: GPTConfig) -> None:
        super().__init__()
        self.n_head = cfg.n_head
        self.c_attn = _Conv1D(cfg.n_embd, 3 * cfg.n_embd)
        self.c_proj = _Conv1D(cfg.n_embd, cfg.n_embd)
        self.attn_pdrop = cfg.attn_pdrop
        self.resid_dropout = nn.Dropout(cfg.resid_pdrop)

    def heads(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Queries, keys and values as (batch, heads, time, head width)."""
        b, t, d = x.shape
        q, k, v = self.c_attn(x).split(d, dim=2)
        shape = (b, t, self.n_head, d // self.n_head)
        return (
            q.view(shape).transpose(1, 2),
            k.view(shape).transpose(1, 2),
            v.view(shape).transpose(1, 2),
        )

    def out(self, o: torch.Tensor) -> torch.Tensor:
        """Merge the heads of an attention output and project it back."""
        b, _, t, _ = o.shape
        return self.resid_dropout(self.c_proj(o.transpose(1, 2).reshape(b, t, -1)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        q, k, v = self.heads(x)
        p = self.attn_pdrop if self.training else 0.0
        return self.out(F.scaled_dot_product_attention(q, k, v, dropout_p=p, is_causal=True))


class _MLP(nn.Module):
    def __init__(self, cfg: GPTConfig) -> None:
        super().__init__()
        self.c_fc = _Conv1D(cfg.n_embd, cfg.inner)
        self.c_proj = _Conv1D(cfg.inner, cfg.n_embd)
        self.dropout = nn.Dropout(cfg.resid_pdrop)
        self.kind = ACTIVATIONS[cfg.activation_function]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.c_fc(x)
        if self.kind == "relu":
            h = F.relu(h)
        else:
            h = F.gelu(h, approximate="tanh" if self.kind == "tanh" else "none")
        return self.dropout(self.c_proj(h))


class _Block(nn.Module):
    def __init__(self, cfg: GPTConfig) -> None:
        super().__init__()
        self.ln_1 = nn.LayerNorm(cfg.n_embd, eps=cfg.layer_norm_epsilon)
        self.attn = _Attention(cfg)
        self.ln_2 = nn.LayerNorm(cfg.n_embd, eps=cfg.layer_norm_epsilon)
        self.mlp = _MLP(cfg)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.attn(self.ln_1(x))
        return x + self.mlp(self.ln_2(x))


class _Transformer(nn.Module):
    def __init__(self, cfg: GPTConfig) -> None:
        super().__init__()
        self.wte = nn.Embedding(cfg.vocab_size, cfg.n_embd)
        self.wpe = nn.Embedding(cfg.n_positions, cfg.n_embd)
        self.drop = nn.Dropout(cfg.embd_pdrop)
        self.h = nn.ModuleList(_Block(cfg) for _ in range(cfg.n_layer))
        self.ln_f = nn.LayerNorm(cfg.n_embd, eps=cfg.layer_norm_epsilon)


class GPT(nn.Module):
    """A GPT-2 language model (tied output head) for the LM paths of healthsynth.

    Parameters
    ----------
    config
        Its size and dropout.
    seed
        Seed of the initial weights (GPT-2's scheme: normal with ``initializer_range``, the
        residual projections scaled by ``1/sqrt(2 * n_layer)``); drawn from a local generator,
        so the global random state is untouched.
    """

    def __init__(self, config: GPTConfig, *, seed: int = 0) -> None:
        super().__init__()
        self.config = config
        self.transformer = _Transformer(config)
        self.lm_head = nn.Linear(config.n_embd, config.vocab_size, bias=False)
        self.lm_head.weight = self.transformer.wte.weight
        self._init(seed)

    @torch.no_grad()
    def _init(self, seed: int) -> None:
        gen = torch.Generator().manual_seed(int(seed))
        std = self.config.initializer_range
        scaled = std / math.sqrt(2 * self.config.n_layer)
        for name, p in self.transformer.named_parameters():
            if name.endswith(("ln_1.weight", "ln_2.weight", "ln_f.weight")):
                p.fill_(1.0)
            elif name.endswith(".bias"):
                p.zero_()
            else:
                p.normal_(0.0, scaled if name.endswith("c_proj.weight") else std, generator=gen)

    def n_parameters(self) -> int:
        """Number of weights (the tied head counted once)."""
        return sum(p.numel() for p in self.parameters())

    def hidden(self, input_ids: torch.Tensor, token_type_ids: torch.Tensor | None) -> torch.Tensor:
        """Final hidden states, (batch, time, width), for whole sequences from position 0."""
        t = self.transformer
        # positions go through the embedding module (not a slice of its weight), one row per
        # sequence, so per-example gradient hooks (DP-SGD) see every use of every weight
        positions = torch.arange(input_ids.shape[1], device=input_ids.device)
        x = t.wte(input_ids) + t.wpe(positions.expand(input_ids.shape[0], -1))
        if token_type_ids is not None:
            x = x + t.wte(token_type_ids)
        x = t.drop(x)
        for block in t.h:
            x = block(x)
        return t.ln_f(x)

    def forward(
        self, input_ids: torch.Tensor, token_type_ids: torch.Tensor | None = None
    ) -> torch.Tensor:
        """Logits over the vocabulary, (batch, time, vocab)."""
        return self.lm_head(self.hidden(input_ids, token_type_ids))


def build_gpt(
    *,
    vocab_size: int,
    n_positions: int,
    n_embd: int,
    n_layer: int,
    n_head: int,
    dropout: float,
    seed: int,
    eos_token_id: int,
) -> GPT:
    """A freshly initialised GPT of this size (every dropout ``dropout``)."""
    from healthsynth.generators._lm._vocab import BOS, PAD

    config = GPTConfig(
        vocab_size=vocab_size,
        n_positions=n_positions,
        n_embd=n_embd,
        n_layer=n_layer,
        n_head=n_head,
        activation_function=ACTIVATION,
        bos_token_id=BOS,
        eos_token_id=eos_token_id,
        pad_token_id=PAD,
    ).with_dropout(dropout)
    return GPT(config, seed=seed)
