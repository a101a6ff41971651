"""`gpt`: a GPT-style decoder-only Transformer (GPTConfig beside GPT), with a key/value cache for fast
generation; also a text encoder for classification (the supervised `gpt` model type).

Token + learned position embeddings → `layers` pre-norm blocks (causal multi-head self-attention,
then a 4x GELU MLP, each in a residual branch) → final LayerNorm → LM head tied to the token
embedding. Attention goes through `torch.nn.functional.scaled_dot_product_attention`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar, Literal

import torch
from torch import Tensor, nn
from torch.nn import functional as F
from pydantic import Field, model_validator

from kiln.config import Section
from kiln.errors import KilnError
from kiln.features import Feature
from kiln.models.base import MODELS, ModelConfig, ModelType, require


class GPTConfig(Section):
    """The GPT architecture, declared once: `task: language_modeling` configs use it as `model:`,
    and the supervised `gpt` model type embeds it."""

    type: Literal["gpt"] = "gpt"
    layers: int = Field(4, ge=1, le=256)
    heads: int = Field(4, ge=1, le=256)
    d_model: int = Field(128, ge=1, le=65_536)
    block_size: int = Field(64, ge=2, le=1_000_000)  # context length in tokens (learned positions)
    attention_dropout: float = Field(0.0, ge=0.0, lt=1.0)  # dropout on embeddings, attention and residual branches
    bias: bool = True  # biases in the linear layers and LayerNorms
    shape_fields: ClassVar[tuple[str, ...]] = ("d_model", "heads", "layers", "block_size", "bias")

    @model_validator(mode="after")
    def _heads_divide(self) -> "GPTConfig":
        if self.d_model % self.heads:
            raise ValueError(f"d_model ({self.d_model}) must be divisible by heads ({self.heads})")
        return self



@dataclass
class KVCache:
    """Keys and values of every layer for the positions seen so far, in preallocated buffers.

    `keys[i]` / `values[i]` have shape (batch, heads, capacity, head_dim); the first `length`
    positions are filled. Capacity is the model's block_size (learned positions end there).
    """

    keys: list[Tensor]
    values: list[Tensor]
    capacity: int
    length: int = 0
    _pending: int = field(default=0, repr=False)  # positions being appended by the current step

    @classmethod
    def empty(cls, model: "GPT", batch: int = 1) -> "KVCache":
        cfg = model.cfg
        head_dim = cfg.d_model // cfg.heads
        ref = model.tok_emb.weight
        shape = (batch, cfg.heads, cfg.block_size, head_dim)
        make = lambda: torch.zeros(shape, dtype=ref.dtype, device=ref.device)  # noqa: E731
        return cls([make() for _ in range(cfg.layers)], [make() for _ in range(cfg.layers)], cfg.block_size)

    @property
    def full(self) -> bool:
        return self.length >= self.capacity

    def append(self, layer: int, k: Tensor, v: Tensor) -> tuple[Tensor, Tensor]:
        """Store k/v (batch, heads, new, head_dim) after the cached positions; return all keys/values so far."""
        start, end = self.length, self.length + k.size(2)
        self.keys[layer][:, :, start:end] = k.to(self.keys[layer].dtype)
        self.values[layer][:, :, start:end] = v.to(self.values[layer].dtype)
        self._pending = k.size(2)
        return self.keys[layer][:, :, :end], self.values[layer][:, :, :end]

    def commit(self) -> None:
        self.length += self._pending
        self._pending = 0


class CausalSelfAttention(nn.Module):
    def __init__(self, d_model: int, heads: int, dropout: float, bias: bool) -> None:
        super().__init__()
        self.heads, self.head_dim, self.dropout = heads, d_model // heads, dropout
        self.qkv = nn.Linear(d_model, 3 * d_model, bias=bias)
        self.proj = nn.Linear(d_model, d_model, bias=bias)
        self.resid_drop = nn.Dropout(dropout)

    def forward(self, x: Tensor, cache: KVCache | None = None, layer: int = 0) -> Tensor:
        b, t, c = x.shape
        q, k, v = (part.view(b, t, self.heads, self.head_dim).transpose(1, 2) for part in self.qkv(x).split(c, dim=2))
        drop = self.dropout if self.training else 0.0
        if cache is None or cache.length == 0:
            if cache is not None:
                cache.append(layer, k, v)
            y = F.scaled_dot_product_attention(q, k, v, dropout_p=drop, is_causal=True)
        else:
            past = cache.length
            k, v = cache.append(layer, k, v)
            # New query i sits at absolute position past + i and may see keys 0 .. past + i.
            mask = None if t == 1 else torch.ones(t, past + t, dtype=torch.bool, device=x.device).tril(diagonal=past)
            y = F.scaled_dot_product_attention(q, k.to(q.dtype), v.to(q.dtype), attn_mask=mask, dropout_p=drop)
        return self.resid_drop(self.proj(y.transpose(1, 2).reshape(b, t, c)))


class Block(nn.Module):
    """Pre-norm decoder block: x + attn(LN(x)), then x + MLP(LN(x))."""

    def __init__(self, d_model: int, heads: int, dropout: float, bias: bool) -> None:
        super().__init__()
        self.ln1 = nn.LayerNorm(d_model, bias=bias)
        self.attn = CausalSelfAttention(d_model, heads, dropout, bias)
        self.ln2 = nn.LayerNorm(d_model, bias=bias)
        self.mlp = nn.Sequential(
            nn.Linear(d_model, 4 * d_model, bias=bias),
            nn.GELU(),
            nn.Linear(4 * d_model, d_model, bias=bias),
            nn.Dropout(dropout),
        )

    def forward(self, x: Tensor, cache: KVCache | None = None, layer: int = 0) -> Tensor:
        x = x + self.attn(self.ln1(x), cache, layer)
        return x + self.mlp(self.ln2(x))


class GPT(nn.Module):
    """Decoder-only Transformer language model."""

    def __init__(self, cfg: GPTConfig, vocab_size: int) -> None:
        super().__init__()
        self.cfg, self.vocab_size = cfg, vocab_size
        self.tok_emb = nn.Embedding(vocab_size, cfg.d_model)
        self.pos_emb = nn.Embedding(cfg.block_size, cfg.d_model)
        self.drop = nn.Dropout(cfg.attention_dropout)
        self.blocks = nn.ModuleList(Block(cfg.d_model, cfg.heads, cfg.attention_dropout, cfg.bias) for _ in range(cfg.layers))
        self.ln_f = nn.LayerNorm(cfg.d_model, bias=cfg.bias)
        self.head = nn.Linear(cfg.d_model, vocab_size, bias=False)
        self.head.weight = self.tok_emb.weight  # weight tying: one matrix embeds and un-embeds tokens
        self.apply(self._init)

    @staticmethod
    def _init(module: nn.Module) -> None:
        if isinstance(module, (nn.Linear, nn.Embedding)):
            nn.init.normal_(module.weight, mean=0.0, std=0.02)
        if isinstance(module, nn.Linear) and module.bias is not None:
            nn.init.zeros_(module.bias)

    @property
    def block_size(self) -> int:
        return self.cfg.block_size

    def num_parameters(self) -> int:
        return sum(p.numel() for p in self.parameters())  # the tied matrix counts once

    def _hidden(self, idx: Tensor, start: int = 0, cache: KVCache | None = None) -> Tensor:
        t = idx.size(1)
        if start + t > self.cfg.block_size:
            raise ValueError(f"sequence of {start + t} positions exceeds block_size {self.cfg.block_size}")
        pos = torch.arange(start, start + t, device=idx.device)
        x = self.drop(self.tok_emb(idx) + self.pos_emb(pos))
        for i, block in enumerate(self.blocks):
            x = block(x, cache, i)
        return self.ln_f(x)

    def forward(self, idx: Tensor, targets: Tensor | None = None) -> tuple[Tensor, Tensor | None]:
        """idx: (batch, time) token ids, time <= block_size. Returns logits (batch, time, vocab) and,
        with targets (same shape; -1 = ignore), the mean next-token cross-entropy."""
        logits = self.head(self._hidden(idx))
        if targets is None:
            return logits, None
        loss = F.cross_entropy(logits.reshape(-1, logits.size(-1)).float(), targets.reshape(-1), ignore_index=-1)
        return logits, loss

    def forward_step(self, idx_new: Tensor, cache: KVCache) -> Tensor:
        """Run only the new positions (batch, new) against the cached keys/values; append theirs to
        the cache. Returns logits (batch, new, vocab) for the new positions."""
        if cache.length + idx_new.size(1) > cache.capacity:
            raise ValueError(f"KV cache holds {cache.length} of {cache.capacity} positions; cannot add {idx_new.size(1)}")
        hidden = self._hidden(idx_new, cache.length, cache)
        cache.commit()
        return self.head(hidden)

    def last_logits(self, idx: Tensor) -> Tensor:
        """Logits for the position after idx (no cache), cropping the context to block_size."""
        idx = idx[:, -self.cfg.block_size :]
        return self.head(self._hidden(idx)[:, -1])

class GPTModelConfig(ModelConfig, GPTConfig):
    type: Literal["gpt"]
    pretrained: str | None = None  # a language-model run (`kiln pretrain` / `kiln train` on task: language_modeling)
    pooling: Literal["mean", "last"] = "mean"  # mean of the real tokens' states, or the last real token's


class GPTTextEncoder(nn.Module):
    """Token ids (post-padded with 0) → GPT hidden states → one vector per row. Causal attention
    means real tokens never see the padding that follows them."""

    def __init__(self, cfg: GPTModelConfig, vocab_size: int) -> None:
        super().__init__()
        self.gpt = GPT(GPTConfig(**{name: getattr(cfg, name) for name in GPTConfig.model_fields}), vocab_size)
        self.pooling = cfg.pooling
        self.output_dim = cfg.d_model

    def forward(self, x: Tensor) -> Tensor:
        mask = x != 0
        lengths = mask.sum(1)
        width = max(1, int(lengths.max()))
        h = self.gpt._hidden(x[:, :width])
        if self.pooling == "last":
            return h[torch.arange(len(x), device=x.device), (lengths - 1).clamp(min=0)]
        m = mask[:, :width].unsqueeze(-1).to(h.dtype)
        return (h * m).sum(1) / m.sum(1).clamp(min=1.0)


@MODELS.register("gpt")
class GPTModel(ModelType):
    name = "gpt"
    Config = GPTModelConfig

    def check(self, inputs: Sequence[Feature]) -> None:
        require(inputs, "text", self.name)

    def text_encoder(self, cfg: GPTModelConfig, info: dict[str, Any]) -> nn.Module:
        if info["max_length"] > cfg.block_size:
            raise KilnError(f"the text input's max_length ({info['max_length']}) exceeds model.block_size ({cfg.block_size}); "
                            "lower max_length")
        return GPTTextEncoder(cfg, info["vocab_size"])
