"""The n-gram bag encoder for `encoder: ngram` text inputs: a weighted sum of hashed n-gram embeddings.

Its input is the feature's (rows, 2, width) tensor of bucket ids over weights (kiln.features.ngrams).
An Embedding lookup times the weights, summed over the width: plain Gather/Mul/ReduceSum, so it
exports to ONNX. `learned_weights`: a trained score per bucket, softmax over each text's n-grams,
replaces the feature's weights. In training, `dropout` removes whole n-grams of a text. The table
starts at zero (measured on SST-2: random rows overfit within an epoch; docs/text.md).
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor, nn


class NgramBagEncoder(nn.Module):
    """Σ weight · embedding over a text's hashed n-grams → (batch, dim)."""

    def __init__(self, buckets: int, dim: int, learned_weights: bool = False, dropout: float = 0.0) -> None:
        super().__init__()
        self.table = nn.Embedding(buckets, dim, padding_idx=0)  # explain attributes its rows, named per n-gram
        nn.init.zeros_(self.table.weight)  # start as a linear model does, at zero: random rows let rare n-grams memorise rows
        self.scores = nn.Embedding(buckets, 1, padding_idx=0) if learned_weights else None
        if self.scores is not None:
            nn.init.zeros_(self.scores.weight)
        self.dropout = dropout
        self.output_dim = dim

    def forward(self, x: Tensor) -> Tensor:
        ids, weights = x[:, 0].long(), x[:, 1]
        if self.training and self.dropout > 0:
            weights = weights * (torch.rand_like(weights) >= self.dropout) / (1.0 - self.dropout)
        if self.scores is not None:
            present = (weights > 0).to(weights.dtype)
            scores = self.scores(ids).squeeze(-1) - 1e4 * (1.0 - present)
            weights = torch.softmax(scores, dim=1) * present
        return (self.table(ids) * weights.unsqueeze(-1)).sum(1)


def ngram_bag(dim: int, info: dict[str, Any]) -> NgramBagEncoder:
    """The encoder for a fitted n-gram text feature (`info`: its describe()) at the model's width."""
    return NgramBagEncoder(info["buckets"], dim, info["learned_weights"], info["dropout"])
