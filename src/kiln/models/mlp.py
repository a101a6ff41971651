"""`mlp`: a multi-layer perceptron over all inputs (text as a bag of embeddings, images flattened)."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import Field

from torch import nn

from kiln.models.base import MODELS, ModelConfig, ModelType, flatten_image
from kiln.models.encoders import TextBagEncoder
from kiln.models.ngram import ngram_bag


class MLPConfig(ModelConfig):
    type: Literal["mlp"]
    hidden: list[Annotated[int, Field(ge=1, le=1_000_000)]] = [64, 32]
    embedding_dim: int = Field(64, ge=1, le=65_536)


@MODELS.register("mlp")
class MLP(ModelType):
    name = "mlp"
    Config = MLPConfig

    def text_encoder(self, cfg: MLPConfig, info: dict[str, Any]) -> nn.Module:
        return TextBagEncoder(info["vocab_size"], cfg.embedding_dim)

    def ngram_encoder(self, cfg: MLPConfig, info: dict[str, Any]) -> nn.Module:
        return ngram_bag(cfg.embedding_dim, info)

    def image_encoder(self, cfg: MLPConfig, info: dict[str, Any]) -> nn.Module:
        return flatten_image(info)

    def audio_encoder(self, cfg: MLPConfig, info: dict[str, Any]) -> nn.Module:
        return flatten_image(info)
