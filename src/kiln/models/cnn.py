"""`cnn`: convolutional encoders for image, audio and text inputs (other tabular inputs join at the hidden layers)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Annotated, Any, Literal

from pydantic import Field

from torch import nn

from kiln.features import Feature
from kiln.models.base import MODELS, ModelConfig, ModelType, require
from kiln.models.encoders import AudioCNNEncoder, AudioConv1dEncoder, ImageCNNEncoder
from kiln.models.ngram import ngram_bag
from kiln.models.textcnn import TrimmedTextCNN


class CNNConfig(ModelConfig):
    type: Literal["cnn"]
    channels: list[Annotated[int, Field(ge=1, le=65_536)]] = Field([32, 64], min_length=1, max_length=64)
    kernel_size: int = Field(3, ge=1, le=255)
    pool: int = Field(2, ge=1, le=255)
    conv_dropout: float = Field(0.0, ge=0.0, lt=1.0)  # image/audio: after each conv block; text: on the pooled features
    hidden: list[Annotated[int, Field(ge=1, le=1_000_000)]] = [128]
    audio: Literal["2d", "1d"] = "2d"  # audio spectrograms: 2-D convolution over (bins, frames), or 1-D over frames
    # text (Kim-style): embedding → one 1-D convolution per width, text_filters maps each → max over time
    embedding_dim: int = Field(128, ge=1, le=65_536)
    text_kernel_sizes: list[Annotated[int, Field(ge=1, le=255)]] = Field([3, 4, 5], min_length=1, max_length=16)
    text_filters: int = Field(100, ge=1, le=65_536)
    embedding_dropout: float = Field(0.0, ge=0.0, lt=1.0)  # on the token embeddings, in training
    ngram_dim: int = Field(64, ge=1, le=65_536)  # an `encoder: ngram` text input beside them: its bag's width


@MODELS.register("cnn")
class CNN(ModelType):
    name = "cnn"
    Config = CNNConfig

    def check(self, inputs: Sequence[Feature]) -> None:
        require(inputs, "image", self.name, "audio", "text")

    def image_encoder(self, cfg: CNNConfig, info: dict[str, Any]) -> nn.Module:
        c, h, w = info["shape"]
        return ImageCNNEncoder(c, h, w, channels=tuple(cfg.channels), kernel_size=cfg.kernel_size, pool=cfg.pool,
                               activation=cfg.activation, dropout=cfg.conv_dropout)

    def audio_encoder(self, cfg: CNNConfig, info: dict[str, Any]) -> nn.Module:
        if cfg.audio == "1d":
            return AudioConv1dEncoder(info["bins"], channels=tuple(cfg.channels), kernel_size=cfg.kernel_size,
                                      activation=cfg.activation, dropout=cfg.conv_dropout)
        return AudioCNNEncoder(info["bins"], info["frames"], channels=tuple(cfg.channels), kernel_size=cfg.kernel_size,
                               pool=cfg.pool, activation=cfg.activation, dropout=cfg.conv_dropout)

    def text_encoder(self, cfg: CNNConfig, info: dict[str, Any]) -> nn.Module:
        return TrimmedTextCNN(info["vocab_size"], cfg.embedding_dim, kernel_sizes=tuple(cfg.text_kernel_sizes),
                              filters=cfg.text_filters, activation_name=cfg.activation,
                              embedding_dropout=cfg.embedding_dropout, dropout=cfg.conv_dropout)

    def ngram_encoder(self, cfg: CNNConfig, info: dict[str, Any]) -> nn.Module:
        return ngram_bag(cfg.ngram_dim, info)
