"""The masked-language-model objective: choose a fraction of real tokens, corrupt them
(<mask> / random token / unchanged) and predict the originals from the encoder's outputs."""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor, nn
from torch.nn import functional as F

from kiln.models.encoders import TextTransformerEncoder

IGNORE = -100  # target value of positions that are not predicted
SPECIAL = (0, 1)  # <pad> and <unk>: never chosen (nothing to learn from predicting them), never a random replacement


def mask_tokens(ids: Tensor, objective: Any, mask_id: int, vocab_size: int, generator: torch.Generator) -> tuple[Tensor, Tensor]:
    """Return (corrupted inputs, targets). Each word token (not <pad>/<unk>) is chosen with probability
    `objective.mask_fraction`; a chosen token becomes <mask> with probability `replace_with_mask`,
    a random vocabulary token with probability `random_token`, else stays. Targets are the original
    ids at chosen positions and IGNORE elsewhere. Random draws come from `generator` only."""
    real = ids > max(SPECIAL)
    draws = torch.rand(ids.shape, generator=generator)
    chosen = real & (draws < objective.mask_fraction)
    how = torch.rand(ids.shape, generator=generator)
    randoms = torch.randint(max(SPECIAL) + 1, vocab_size, ids.shape, generator=generator)
    inputs = ids.clone()
    to_mask = chosen & (how < objective.replace_with_mask)
    to_random = chosen & (how >= objective.replace_with_mask) & (how < objective.replace_with_mask + objective.random_token)
    inputs[to_mask] = mask_id
    inputs[to_random] = randoms[to_random]
    targets = torch.where(chosen, ids, torch.full_like(ids, IGNORE))
    return inputs, targets


def trim(ids: Tensor, *others: Tensor) -> tuple[Tensor, ...]:
    """Drop the trailing columns that are padding in every row (same result, less work)."""
    real = (ids != 0).any(dim=0).nonzero()
    length = int(real.max()) + 1 if len(real) else 1
    return tuple(t[:, :length] for t in (ids, *others))


class MaskedSampler:
    """Draws random examples and masks them; the draw of iteration i depends only on (seed, i)."""

    def __init__(self, objective: Any, mask_id: int, vocab_size: int, tokens_per_example: float = 0.0) -> None:
        self.objective, self.mask_id, self.vocab_size = objective, mask_id, vocab_size
        self.tokens_per_example = tokens_per_example  # mean real tokens per example, for throughput figures

    def _batch(self, data: Tensor, rows: Tensor, generator: torch.Generator) -> tuple[Tensor, Tensor]:
        ids = data[rows.to(data.device)].cpu()
        x, y = mask_tokens(ids, self.objective, self.mask_id, self.vocab_size, generator)
        x, y = trim(ids, x, y)[1:]
        return x.to(data.device), y.to(data.device)

    def sample(self, data: Tensor, count: int, generator: torch.Generator) -> tuple[Tensor, Tensor]:
        return self._batch(data, torch.randint(0, len(data), (count,), generator=generator), generator)

    def fixed(self, data: Tensor, batches: int, batch_size: int, seed: int) -> list[tuple[Tensor, Tensor]]:
        generator = torch.Generator().manual_seed(seed * 7_919 + 17)
        order = torch.randperm(len(data), generator=generator)
        size = min(batch_size, len(data))
        out = []
        for b in range(batches):
            rows = order[(torch.arange(size) + b * size) % len(data)]
            out.append(self._batch(data, rows, generator))
        return out


class MaskedLanguageModel(nn.Module):
    """kiln's text Transformer encoder + a prediction head whose output matrix is the (tied) token
    embedding. The vocabulary has one extra id, `mask_id` = tokenizer vocab size, for <mask>.

    The encoder multiplies embeddings by sqrt(d_model), so they start at std d_model**-0.5 (scaled:
    std 1, like the positional encoding). At torch's default std 1 the scaled embedding is sqrt(d)
    times larger than what the layers and positions add to the residual stream, and the encoder
    starts as (and, in a short run, stays) a bag of words. `logit_scale` multiplies the head's
    logits: 1 for this init; runs saved before it (std-1 embeddings) load with d_model**-0.5."""

    def __init__(self, cfg: Any, vocab_size: int, max_length: int, logit_scale: float = 1.0) -> None:
        super().__init__()
        self.mask_id = vocab_size
        self.logit_scale = logit_scale
        self.encoder = TextTransformerEncoder(vocab_size + 1, d_model=cfg.d_model, heads=cfg.heads, layers=cfg.layers,
                                              ff_dim=cfg.ff_dim, dropout=cfg.attention_dropout, max_length=max(512, max_length))
        with torch.no_grad():
            self.encoder.embedding.weight.normal_(0.0, cfg.d_model ** -0.5)
            self.encoder.embedding.weight[0].zero_()  # <pad>
        self.transform = nn.Sequential(nn.Linear(cfg.d_model, cfg.d_model), nn.GELU(), nn.LayerNorm(cfg.d_model))
        self.bias = nn.Parameter(torch.zeros(vocab_size + 1))

    def forward(self, x: Tensor, targets: Tensor | None = None) -> tuple[Tensor, Tensor | None]:
        """Logits at the predicted positions (all positions when targets is None), and the loss."""
        h = self.encoder.hidden_states(x)
        if targets is not None:
            picked = targets != IGNORE
            h, wanted = h[picked], targets[picked]
        # LayerNorm outputs have norm ~sqrt(d), embedding rows ~1: initial logits are ~N(0, 1).
        logits = F.linear(self.transform(h), self.encoder.embedding.weight) * self.logit_scale + self.bias
        if targets is None:
            return logits, None
        loss = F.cross_entropy(logits.float(), wanted) if len(wanted) else logits.sum() * 0.0
        return logits, loss

    def num_parameters(self) -> int:
        return sum(p.numel() for p in self.parameters())
