"""Weight initialisation schemes for Linear, Conv and Embedding layers."""

from __future__ import annotations

import torch
from torch import nn

_WEIGHTED = (nn.Linear, nn.Conv1d, nn.Conv2d, nn.Conv3d, nn.Embedding)
SCHEMES = ("xavier", "gaussian", "default")


def init_weights(module: nn.Module, scheme: str = "default", std: float = 0.02) -> nn.Module:
    """Initialise Linear/Conv/Embedding weights in place and zero their biases.

    ``xavier``: xavier_uniform; ``gaussian``: normal(0, std); ``default``: leave
    PyTorch's own init. Embedding padding rows stay zero; norm layers are untouched.
    """
    if scheme not in SCHEMES:
        raise ValueError(f"unknown init scheme {scheme!r}; valid: {', '.join(SCHEMES)}")
    if scheme == "default":
        return module
    for m in module.modules():
        if not isinstance(m, _WEIGHTED):
            continue
        if scheme == "xavier":
            nn.init.xavier_uniform_(m.weight)
        else:
            nn.init.normal_(m.weight, 0.0, std)
        bias = getattr(m, "bias", None)
        if bias is not None:
            nn.init.zeros_(bias)
        if isinstance(m, nn.Embedding) and m.padding_idx is not None:
            with torch.no_grad():
                m.weight[m.padding_idx].zero_()
    return module
