"""`transformer`: a Transformer encoder (multi-head self-attention + positional encoding) for text."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Literal

import torch
from torch import nn

from kiln.features import Feature
from kiln.models.base import MODELS, ModelConfig, ModelType, require
from kiln.models.encoders import TextTransformerEncoder


class TrimmedTextTransformer(TextTransformerEncoder):
    """The text Transformer, run only up to the longest sequence in each batch.

    Text features post-pad every row to max_length; columns that are padding in every row change nothing
    (padded keys are masked, padded positions are left out of the pooling), so dropping them gives the
    same output for a fraction of the cost: SST-2 sentences average 10 tokens in rows padded to 64.
    """

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        real = (x != 0).any(dim=0).nonzero()
        length = int(real.max()) + 1 if len(real) else 1
        return super().forward(x[:, :length] if length < x.size(1) else x)


class TransformerConfig(ModelConfig):
    type: Literal["transformer"]
    d_model: int = 64
    heads: int = 4
    layers: int = 2
    ff_dim: int | None = None
    attention_dropout: float = 0.1
    pretrained: str | None = None  # a `kiln pretrain` run: its encoder weights and tokenizer are reused


@MODELS.register("transformer")
class Transformer(ModelType):
    name = "transformer"
    Config = TransformerConfig

    def check(self, inputs: Sequence[Feature]) -> None:
        require(inputs, "text", self.name)

    def text_encoder(self, cfg: TransformerConfig, info: dict[str, Any]) -> nn.Module:
        vocab = info["vocab_size"] + (1 if cfg.pretrained else 0)  # pre-training added a <mask> id
        return TrimmedTextTransformer(vocab, d_model=cfg.d_model, heads=cfg.heads, layers=cfg.layers,
                                      ff_dim=cfg.ff_dim, dropout=cfg.attention_dropout,
                                      max_length=max(512, info["max_length"]))
