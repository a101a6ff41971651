"""int8 weights: how compressed models store them (safetensors: int8 values + one float32 scale per
row, symmetric) and run them (torch.ao dynamic quantisation when this torch still has it; it is
deprecated since torch 2.10, so everything else works without it)."""

from __future__ import annotations

import logging
import warnings
from typing import Any

import torch
from torch import nn

from kiln.errors import KilnError

SCALE = ".int8_scale"
MODULES: dict[str, tuple[type[nn.Module], ...]] = {
    "linear": (nn.Linear,),
    "lstm": (nn.LSTM,),
    "gru": (nn.GRU,),
    "embedding": (nn.Embedding,),
}
log = logging.getLogger("kiln")


def torch_quantization_available() -> bool:
    """True when torch.ao.quantization.quantize_dynamic exists and runs (the CPU quantised kernels are built in)."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            from torch.ao.quantization import quantize_dynamic

            probe = quantize_dynamic(nn.Sequential(nn.Linear(2, 2)), {nn.Linear}, dtype=torch.qint8)
            probe(torch.zeros(1, 2))
        return True
    except Exception:  # noqa: BLE001 - removed module, missing engine, unsupported platform
        return False


def int8_names(net: nn.Module, modules: list[str]) -> list[str]:
    """State-dict names of the weight matrices that int8 storage covers, for the chosen module kinds."""
    unknown = sorted(set(modules) - set(MODULES))
    if unknown:
        raise KilnError(f"compress.quantize.modules: unknown {unknown}; valid: {', '.join(MODULES)}")
    kinds = tuple(t for m in modules for t in MODULES[m])
    names = []
    for prefix, module in net.named_modules():
        if isinstance(module, kinds):
            for pname, param in module.named_parameters(recurse=False):
                if pname.startswith("weight") and param.dim() == 2:
                    names.append(f"{prefix}.{pname}" if prefix else pname)
    return names


def quantize_rows(weight: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Symmetric per-row int8: (values in [-127, 127], float32 scale per row)."""
    scale = weight.abs().amax(dim=1).clamp(min=1e-12) / 127.0
    return torch.round(weight / scale[:, None]).clamp(-127, 127).to(torch.int8), scale.float()


def round_trip(net: nn.Module, names: list[str]) -> None:
    """Replace the named weights by their int8-dequantised values (what storage keeps), in place."""
    params = dict(net.named_parameters())
    with torch.no_grad():
        for name in names:
            values, scale = quantize_rows(params[name].float())
            params[name].copy_(values.float() * scale[:, None])


def encode(state: dict[str, torch.Tensor], names: list[str]) -> dict[str, torch.Tensor]:
    tensors = {}
    for key, value in state.items():
        if key in names:
            tensors[key], tensors[key + SCALE] = quantize_rows(value.float())
        else:
            tensors[key] = value
    return tensors


def decode(tensors: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    state = {}
    for key, value in tensors.items():
        if key.endswith(SCALE):
            continue
        scale = tensors.get(key + SCALE)
        state[key] = value.float() * scale[:, None] if scale is not None else value
    return state


def dynamic_int8(net: nn.Module, modules: list[str]) -> nn.Module:
    """torch.ao dynamic int8 copy of `net` (activations quantised per batch at run time)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # torch.ao.quantization's deprecation notice
        from torch.ao.quantization import (default_dynamic_qconfig, float_qparams_weight_only_qconfig, per_channel_dynamic_qconfig,
                                          quantize_dynamic)

        spec: dict[Any, Any] = {}
        for kind in modules:
            for module_type in MODULES[kind]:
                spec[module_type] = {"embedding": float_qparams_weight_only_qconfig, "linear": per_channel_dynamic_qconfig}.get(
                    kind, default_dynamic_qconfig)  # per-channel where torch has it: storage keeps one scale per row
        return quantize_dynamic(net, spec, dtype=torch.qint8, inplace=False)
