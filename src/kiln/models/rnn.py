"""`rnn`: embedding → stacked LSTM/GRU layers over packed (unpadded) sequences → last state or pooling, for text."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Annotated, Any, Literal

from pydantic import Field

from torch import nn

from kiln.features import Feature
from kiln.models.base import MODELS, ModelConfig, ModelType, require
from kiln.models.encoders import TextRNNEncoder


class RNNConfig(ModelConfig):
    type: Literal["rnn"]
    cell: Literal["lstm", "gru"] = "lstm"
    embedding_dim: int = Field(64, ge=1, le=65_536)
    rnn_hidden: list[Annotated[int, Field(ge=1, le=65_536)]] = Field([128], min_length=1, max_length=64)
    bidirectional: bool = False
    rnn_dropout: float = Field(0.0, ge=0.0, lt=1.0)  # between stacked recurrent layers
    pool: Literal["last", "max", "mean", "max_mean"] = "last"  # last: final hidden state; else over each row's real tokens
    embedding_dropout: float = Field(0.0, ge=0.0, lt=1.0)  # on the token embeddings, in training


@MODELS.register("rnn")
class RNN(ModelType):
    name = "rnn"
    Config = RNNConfig

    def check(self, inputs: Sequence[Feature]) -> None:
        require(inputs, "text", self.name)

    def text_encoder(self, cfg: RNNConfig, info: dict[str, Any]) -> nn.Module:
        return TextRNNEncoder(info["vocab_size"], cfg.embedding_dim, hidden=tuple(cfg.rnn_hidden), cell=cfg.cell,
                              bidirectional=cfg.bidirectional, dropout=cfg.rnn_dropout, pool=cfg.pool,
                              embedding_dropout=cfg.embedding_dropout)
