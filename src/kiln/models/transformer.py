"""`transformer`: a Transformer encoder (multi-head self-attention + positional encoding) for text."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Literal

from torch import nn

from kiln.features import Feature
from kiln.models.base import MODELS, ModelConfig, ModelType, require
from kiln.models.encoders import TextTransformerEncoder


class TransformerConfig(ModelConfig):
    type: Literal["transformer"]
    d_model: int = 64
    heads: int = 4
    layers: int = 2
    ff_dim: int | None = None
    attention_dropout: float = 0.1


@MODELS.register("transformer")
class Transformer(ModelType):
    name = "transformer"
    Config = TransformerConfig

    def check(self, inputs: Sequence[Feature]) -> None:
        require(inputs, "text", self.name)

    def text_encoder(self, cfg: TransformerConfig, info: dict[str, Any]) -> nn.Module:
        return TextTransformerEncoder(info["vocab_size"], d_model=cfg.d_model, heads=cfg.heads, layers=cfg.layers,
                                      ff_dim=cfg.ff_dim, dropout=cfg.attention_dropout,
                                      max_length=max(512, info["max_length"]))
