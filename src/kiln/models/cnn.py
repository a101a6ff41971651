"""`cnn`: convolutional encoder for image and audio inputs (other tabular inputs join at the hidden layers)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Annotated, Any, Literal

from pydantic import Field

from torch import nn

from kiln.features import Feature
from kiln.models.base import MODELS, ModelConfig, ModelType, require
from kiln.models.encoders import AudioCNNEncoder, AudioConv1dEncoder, ImageCNNEncoder


class CNNConfig(ModelConfig):
    type: Literal["cnn"]
    channels: list[Annotated[int, Field(ge=1, le=65_536)]] = Field([32, 64], min_length=1, max_length=64)
    kernel_size: int = Field(3, ge=1, le=255)
    pool: int = Field(2, ge=1, le=255)
    conv_dropout: float = Field(0.0, ge=0.0, lt=1.0)
    hidden: list[Annotated[int, Field(ge=1, le=1_000_000)]] = [128]
    audio: Literal["2d", "1d"] = "2d"  # audio spectrograms: 2-D convolution over (bins, frames), or 1-D over frames


@MODELS.register("cnn")
class CNN(ModelType):
    name = "cnn"
    Config = CNNConfig

    def check(self, inputs: Sequence[Feature]) -> None:
        require(inputs, "image", self.name, "audio")

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
