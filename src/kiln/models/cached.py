"""Training on cached encoder outputs. A frozen input encoder that can pool its rows once
(`pool_rows`, e.g. model type hf's HFTextEncoder) stands aside while training: a `CachedEncoder`
takes its place, applying only the encoder's dropout to the cached pooled vectors."""

from __future__ import annotations

import torch
from torch import nn

from kiln.models.base import Network


class CachedEncoder(nn.Module):
    """A frozen encoder's stand-in: cached pooled vectors (batch, dim) → the encoder's dropout."""

    def __init__(self, encoder: nn.Module) -> None:
        super().__init__()
        self.drop = encoder.drop
        self.output_dim = int(encoder.output_dim)

    def forward(self, pooled: torch.Tensor) -> torch.Tensor:
        return self.drop(pooled)


def cacheable(net: nn.Module) -> dict[str, nn.Module]:
    """The input encoders of `net`, by input name, that can pool their rows once."""
    if not isinstance(net, Network):
        return {}
    return {name: enc for name, enc in zip(net.input_names, net.encoders) if hasattr(enc, "pool_rows")}


def on_cached(net: Network, names: list[str]) -> Network:
    """`net` with the inputs `names` taken as their encoders' cached pooled vectors."""
    encoders = dict(zip(net.input_names, net.encoders))
    return net.with_encoders({name: CachedEncoder(encoders[name]) for name in names})
