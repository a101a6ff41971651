"""Attention maps of Transformer text encoders: per row and layer, the self-attention weights
averaged over heads, cropped to the row's tokens (recomputed in a forward hook from the layer's own
query/key projections, so the network's code is untouched)."""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from kiln.data.preprocessor import TensorData
from kiln.deploy.attributions import untrimmed
from kiln.models.attention import MultiHeadSelfAttention, attention_weights


def attention_maps(net: nn.Module, features: list[Any], data: TensorData) -> dict[str, list[list[list[list[float]]]]]:
    """{text feature: per row, per layer, a (tokens × tokens) map} for inputs encoded by a Transformer."""
    net = untrimmed(net).eval()
    captured: dict[str, list[torch.Tensor]] = {}
    hooks = []
    for feature, encoder in zip(features, net.encoders):
        layers = [m for m in encoder.modules() if isinstance(m, MultiHeadSelfAttention)]
        if feature.type != "text" or not layers:
            continue
        captured[feature.name] = []

        def hook(module: MultiHeadSelfAttention, args: tuple[Any, ...], _out: Any, name: str = feature.name) -> None:
            x, mask = args[0], args[1] if len(args) > 1 else None
            q, k = module._split(module.q_proj(x)), module._split(module.k_proj(x))
            weights = attention_weights(q, k, None if mask is None else mask[:, None, None, :])
            captured[name].append(weights.mean(1))

        hooks += [layer.register_forward_hook(hook) for layer in layers]
    try:
        with torch.no_grad():
            net(data.inputs)
    finally:
        for h in hooks:
            h.remove()
    maps: dict[str, list[Any]] = {}
    for name, per_layer in captured.items():
        lengths = (data.inputs[name] != 0).sum(1).clamp(min=1)
        maps[name] = [[layer[row, : int(n), : int(n)].tolist() for layer in per_layer] for row, n in enumerate(lengths)]
    return maps
