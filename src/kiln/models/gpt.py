"""`gpt`: a GPT-style decoder (kiln.lm.gpt) as a text encoder for classification or regression,
usually fine-tuned from a language-model run with `model.pretrained` (next-token pre-training)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Literal

import torch
from torch import Tensor, nn

from kiln.features import Feature
from kiln.models.base import MODELS, ModelConfig, ModelType, require


class GPTModelConfig(ModelConfig):
    type: Literal["gpt"]
    pretrained: str | None = None  # a language-model run (`kiln pretrain` / `kiln train` on task: language_modeling)
    layers: int = 4
    heads: int = 4
    d_model: int = 128
    block_size: int = 64  # longest input in tokens (learned positions)
    bias: bool = True
    attention_dropout: float = 0.0
    pooling: Literal["mean", "last"] = "mean"  # mean of the real tokens' states, or the last real token's


class GPTTextEncoder(nn.Module):
    """Token ids (post-padded with 0) → GPT hidden states → one vector per row. Causal attention
    means real tokens never see the padding that follows them."""

    def __init__(self, cfg: GPTModelConfig, vocab_size: int) -> None:
        super().__init__()
        from kiln.lm.config import GPTConfig
        from kiln.lm.gpt import GPT

        arch = GPTConfig(layers=cfg.layers, heads=cfg.heads, d_model=cfg.d_model, block_size=cfg.block_size,
                         dropout=cfg.attention_dropout, bias=cfg.bias)
        self.gpt = GPT(arch, vocab_size)
        self.pooling = cfg.pooling
        self.output_dim = cfg.d_model

    def forward(self, x: Tensor) -> Tensor:
        mask = x != 0
        lengths = mask.sum(1)
        width = max(1, int(lengths.max()))
        h = self.gpt._hidden(x[:, :width])
        if self.pooling == "last":
            return h[torch.arange(len(x), device=x.device), (lengths - 1).clamp(min=0)]
        m = mask[:, :width].unsqueeze(-1).to(h.dtype)
        return (h * m).sum(1) / m.sum(1).clamp(min=1.0)


@MODELS.register("gpt")
class GPTModel(ModelType):
    name = "gpt"
    Config = GPTModelConfig

    def check(self, inputs: Sequence[Feature]) -> None:
        require(inputs, "text", self.name)

    def text_encoder(self, cfg: GPTModelConfig, info: dict[str, Any]) -> nn.Module:
        if info["max_length"] > cfg.block_size:
            from kiln.errors import KilnError

            raise KilnError(f"the text input's max_length ({info['max_length']}) exceeds model.block_size ({cfg.block_size}); "
                            "lower max_length")
        return GPTTextEncoder(cfg, info["vocab_size"])
