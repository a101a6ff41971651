"""`transformer`: a Transformer encoder (multi-head self-attention + positional encoding) for text."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, ClassVar, Literal

import torch
from pydantic import Field, model_validator
from torch import nn

from kiln.config import Section
from kiln.features import Feature
from kiln.models.base import MODELS, ModelConfig, ModelType, require
from kiln.models.encoders import AudioTransformerEncoder, TextTransformerEncoder


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


class TransformerEncoderConfig(Section):
    """The text Transformer encoder's architecture, declared once: `task: pretraining` configs use it
    as `model:`, and the supervised `transformer` model type embeds it."""

    type: Literal["transformer"] = "transformer"
    d_model: int = Field(64, ge=1, le=65_536)
    heads: int = Field(4, ge=1, le=256)
    layers: int = Field(2, ge=1, le=256)
    ff_dim: int | None = Field(None, ge=1, le=1_000_000)  # feed-forward width; None: 4 * d_model
    attention_dropout: float = Field(0.1, ge=0.0, lt=1.0)
    shape_fields: ClassVar[tuple[str, ...]] = ("d_model", "heads", "layers", "ff_dim")

    @model_validator(mode="after")
    def _heads_divide(self) -> "TransformerEncoderConfig":
        if self.d_model % self.heads:
            raise ValueError(f"d_model ({self.d_model}) must be divisible by heads ({self.heads})")
        return self


class TransformerConfig(ModelConfig, TransformerEncoderConfig):
    type: Literal["transformer"]
    pretrained: str | None = None  # a `kiln pretrain` run: its encoder weights and tokenizer are reused
    pool: Literal["mean", "max", "max_mean"] = "mean"  # text: pooling of the token outputs over the real tokens


@MODELS.register("transformer")
class Transformer(ModelType):
    name = "transformer"
    Config = TransformerConfig

    def check(self, inputs: Sequence[Feature]) -> None:
        require(inputs, "text", self.name, "audio")

    def text_encoder(self, cfg: TransformerConfig, info: dict[str, Any]) -> nn.Module:
        vocab = info["vocab_size"] + (1 if cfg.pretrained else 0)  # pre-training added a <mask> id
        return TrimmedTextTransformer(vocab, d_model=cfg.d_model, heads=cfg.heads, layers=cfg.layers,
                                      ff_dim=cfg.ff_dim, dropout=cfg.attention_dropout,
                                      max_length=max(512, info["max_length"]), pool=cfg.pool)

    def audio_encoder(self, cfg: TransformerConfig, info: dict[str, Any]) -> nn.Module:
        return AudioTransformerEncoder(info["bins"], info["frames"], d_model=cfg.d_model, heads=cfg.heads, layers=cfg.layers,
                                       ff_dim=cfg.ff_dim, dropout=cfg.attention_dropout)
