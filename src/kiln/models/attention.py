"""Explicit scaled dot-product attention and a small pre-norm Transformer encoder."""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn
from torch.nn import functional as F

from kiln.models.activations import activation as make_activation


def attention_weights(q: Tensor, k: Tensor, mask: Tensor | None = None) -> Tensor:
    """Return softmax(Q K^T / sqrt(d_k) + mask) of shape (batch, heads, q_len, k_len).

    ``mask`` is boolean, True = may attend. Fully-masked rows yield all-zero weights.
    """
    scores = q @ k.transpose(-2, -1) / math.sqrt(q.size(-1))
    if mask is None:
        return torch.softmax(scores, dim=-1)
    mask = mask.to(torch.bool)
    scores = scores.masked_fill(~mask, float("-inf"))
    # A fully-masked row is all -inf; give it finite scores, then zero its weights.
    empty = ~mask.any(dim=-1, keepdim=True)
    scores = scores.masked_fill(empty, 0.0)
    return torch.softmax(scores, dim=-1).masked_fill(empty, 0.0)


def scaled_dot_product_attention(
    q: Tensor,
    k: Tensor,
    v: Tensor,
    mask: Tensor | None = None,
    dropout_p: float = 0.0,
    training: bool = False,
) -> Tensor:
    """Compute softmax(Q K^T / sqrt(d_k) + mask) V explicitly.

    q, k, v: (batch, heads, seq, d_k). ``mask``: bool broadcastable to
    (batch, heads, q_len, k_len), True = may attend. Fully-masked rows give zeros.
    """
    weights = attention_weights(q, k, mask)
    if dropout_p > 0.0 and training:
        weights = F.dropout(weights, p=dropout_p, training=True)
    return weights @ v


class MultiHeadSelfAttention(nn.Module):
    """Multi-head self-attention with separate Q/K/V/output projections."""

    def __init__(self, d_model: int, heads: int, dropout: float = 0.0) -> None:
        super().__init__()
        if d_model % heads:
            raise ValueError(f"d_model ({d_model}) must be divisible by heads ({heads})")
        self.d_model, self.heads, self.d_k = d_model, heads, d_model // heads
        self.dropout = dropout
        self.q_proj = nn.Linear(d_model, d_model)
        self.k_proj = nn.Linear(d_model, d_model)
        self.v_proj = nn.Linear(d_model, d_model)
        self.out_proj = nn.Linear(d_model, d_model)

    def _split(self, x: Tensor) -> Tensor:
        b, s, _ = x.shape
        return x.view(b, s, self.heads, self.d_k).transpose(1, 2)

    def forward(self, x: Tensor, key_padding_mask: Tensor | None = None) -> Tensor:
        """x: (batch, seq, d_model); key_padding_mask: bool (batch, seq), True = real token."""
        q, k, v = self._split(self.q_proj(x)), self._split(self.k_proj(x)), self._split(self.v_proj(x))
        mask = None if key_padding_mask is None else key_padding_mask[:, None, None, :].to(torch.bool)
        out = scaled_dot_product_attention(q, k, v, mask, self.dropout, self.training)
        b, _, s, _ = out.shape
        return self.out_proj(out.transpose(1, 2).reshape(b, s, self.d_model))


class SinusoidalPositionalEncoding(nn.Module):
    """Add the fixed sin/cos positional encoding to (batch, seq, d_model) inputs."""

    pe: Tensor

    def __init__(self, d_model: int, max_length: int = 512) -> None:
        super().__init__()
        position = torch.arange(max_length, dtype=torch.float32)[:, None]
        div = torch.exp(torch.arange(0, d_model, 2, dtype=torch.float32) * (-math.log(10000.0) / d_model))
        pe = torch.zeros(max_length, d_model)
        pe[:, 0::2] = torch.sin(position * div)
        pe[:, 1::2] = torch.cos(position * div)[:, : d_model // 2]
        self.register_buffer("pe", pe)

    def forward(self, x: Tensor) -> Tensor:
        if x.size(1) > self.pe.size(0):
            raise ValueError(f"sequence length {x.size(1)} exceeds max_length {self.pe.size(0)}")
        return x + self.pe[: x.size(1)].to(x.dtype)


class TransformerEncoderLayer(nn.Module):
    """Pre-norm encoder layer: x + Attn(LN(x)), then x + FFN(LN(x))."""

    def __init__(
        self, d_model: int, heads: int, ff_dim: int, dropout: float = 0.0, activation: str = "gelu"
    ) -> None:
        super().__init__()

        self.norm1 = nn.LayerNorm(d_model)
        self.attn = MultiHeadSelfAttention(d_model, heads, dropout)
        self.norm2 = nn.LayerNorm(d_model)
        self.ff = nn.Sequential(
            nn.Linear(d_model, ff_dim),
            make_activation(activation),
            nn.Dropout(dropout),
            nn.Linear(ff_dim, d_model),
        )
        self.drop = nn.Dropout(dropout)

    def forward(self, x: Tensor, key_padding_mask: Tensor | None = None) -> Tensor:
        x = x + self.drop(self.attn(self.norm1(x), key_padding_mask))
        return x + self.drop(self.ff(self.norm2(x)))
