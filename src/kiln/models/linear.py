"""`linear`: linear regression (numeric output) or logistic regression (binary/category output)."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field, model_validator
from torch import nn

from kiln.models.base import MODELS, ModelConfig, ModelType, flatten_image
from kiln.models.encoders import TextBagEncoder
from kiln.models.ngram import ngram_bag


class LinearConfig(ModelConfig):
    type: Literal["linear"]
    embedding_dim: int = Field(32, ge=1, le=65_536)  # text inputs: mean of token embeddings

    @model_validator(mode="after")
    def _no_hidden(self) -> "LinearConfig":
        if self.hidden:
            raise ValueError("a linear model has no hidden layers; use type: mlp")
        return self


@MODELS.register("linear")
class Linear(ModelType):
    name = "linear"
    Config = LinearConfig

    def text_encoder(self, cfg: LinearConfig, info: dict[str, Any]) -> nn.Module:
        return TextBagEncoder(info["vocab_size"], cfg.embedding_dim)

    def ngram_encoder(self, cfg: LinearConfig, info: dict[str, Any]) -> nn.Module:
        return ngram_bag(cfg.embedding_dim, info)

    def image_encoder(self, cfg: LinearConfig, info: dict[str, Any]) -> nn.Module:
        return flatten_image(info)
