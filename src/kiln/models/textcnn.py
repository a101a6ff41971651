"""Kim-style text CNN: token embedding → parallel 1-D convolutions of several widths → max over each row's
real positions → concatenated features."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor, nn

from kiln.models.activations import activation
from kiln.models.encoders import length_mask, pool_over_time


class TextCNNEncoder(nn.Module):
    """Embedding (+ dropout) → one Conv1d per kernel width (`filters` maps each) → activation → max over time
    → concatenation (+ dropout). Output width: filters × len(kernel_sizes).

    Each convolution zero-pads k-1 positions on both sides, so sentences shorter than a kernel still get a
    window, and output position t sees tokens t-k+1 .. t. Windows that lie wholly on padding are masked out
    of the max (they would give the bias, whatever the sentence), so the output does not depend on how
    much padding follows the tokens: batches can be cut to their longest row.
    """

    def __init__(
        self,
        vocab_size: int,
        embedding_dim: int = 128,
        kernel_sizes: Sequence[int] = (3, 4, 5),
        filters: int = 100,
        activation_name: str = "relu",
        embedding_dropout: float = 0.0,
        dropout: float = 0.0,
    ) -> None:
        super().__init__()
        if not kernel_sizes or min(kernel_sizes) < 1 or filters < 1:
            raise ValueError("kernel_sizes must be non-empty positive widths and filters positive")
        self.embedding = nn.Embedding(vocab_size, embedding_dim, padding_idx=0)
        self.embedding_dropout = nn.Dropout(embedding_dropout)
        self.kernel_sizes = tuple(int(k) for k in kernel_sizes)
        self.convs = nn.ModuleList(nn.Conv1d(embedding_dim, filters, k, padding=k - 1) for k in self.kernel_sizes)
        self.act = activation(activation_name)
        self.dropout = nn.Dropout(dropout)
        self.output_dim = filters * len(self.kernel_sizes)

    def forward(self, x: Tensor) -> Tensor:
        lengths = (x != 0).sum(1)
        h = self.embedding_dropout(self.embedding(x)).transpose(1, 2)  # (batch, dim, seq)
        pooled = []
        for k, conv in zip(self.kernel_sizes, self.convs):
            out = self.act(conv(h)).transpose(1, 2)  # (batch, seq + k - 1, filters)
            pooled.append(pool_over_time(out, length_mask(lengths + (k - 1), out.size(1)), "max"))
        return self.dropout(torch.cat(pooled, dim=-1))


class TrimmedTextCNN(TextCNNEncoder):
    """The text CNN run only up to the longest sequence in each batch (same output, a fraction of the cost:
    SST-2 rows average ~10 tokens in rows padded to max_length)."""

    def forward(self, x: Tensor) -> Tensor:
        real = (x != 0).any(dim=0).nonzero()
        length = int(real.max()) + 1 if len(real) else 1
        return super().forward(x[:, :length] if length < x.size(1) else x)
