"""Unstructured and structured pruning of a kiln network (torch.nn.utils.prune masks).

Criteria: `magnitude` (L1 of each weight; one threshold over all layers or per layer) and `activation`
(|W_ij| · ‖x_j‖, the weight times the L2 norm of its input column over calibration rows, compared
within each output row: Sun et al. 2023, "Wanda"), and `reconstruct` (that mask, then the kept weights
re-fit by least squares: kiln.deploy.reconstruct). For LSTM/GRU weights the inputs are the layer's
input tokens (weight_ih) and its output states (weight_hh, standing in for the previous step's);
packed sequences give exactly the real tokens."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from torch import nn
from torch.nn.utils import prune as torch_prune
from torch.nn.utils.rnn import PackedSequence

from kiln.deploy.spec import PruneSpec
from kiln.errors import KilnError

Target = tuple[nn.Module, str]
CALIBRATED = ("activation", "reconstruct")  # criteria that read training rows (unstructured only)


def prunable(net: nn.Module, structured: bool) -> list[Target]:
    """Weight matrices to prune: Linear, Conv and recurrent weights, never the output heads
    (structured pruning takes only Linear and Conv layers)."""
    heads = {id(m) for m in getattr(net, "heads", [])}
    kinds: tuple[type[nn.Module], ...] = (nn.Linear, nn.Conv2d) if structured else (nn.Linear, nn.Conv2d, nn.LSTM, nn.GRU)
    found = []
    for module in net.modules():
        if isinstance(module, kinds) and id(module) not in heads:
            found += [(module, name) for name, p in module.named_parameters(recurse=False) if name.startswith("weight") and p.dim() > 1]
    if not found:
        raise KilnError("compress.prune: this model has no prunable weight matrices")
    return found


def apply_pruning(net: nn.Module, spec: PruneSpec, calibration: Sequence[dict[str, torch.Tensor]] = ()) -> list[Target]:
    """Prune `net` in place as `spec` says (masks stay attached; torch_prune.remove makes them permanent)."""
    targets = prunable(net, spec.structured)
    if spec.structured:
        for module, name in targets:
            torch_prune.ln_structured(module, name, amount=spec.amount, n=2, dim=0)
    elif spec.criterion == "activation":
        norms = input_norms(net, targets, calibration)
        for module, name in targets:
            score = getattr(module, name).detach().abs().flatten(2 if getattr(module, name).dim() > 2 else 1)
            score = score * norms[(id(module), name)].reshape(1, -1, *([1] * (score.dim() - 2)))
            torch_prune.custom_from_mask(module, name, row_mask(score, spec.amount).reshape(getattr(module, name).shape))
    elif spec.criterion == "reconstruct":
        from kiln.deploy.reconstruct import reconstruct_prune

        masks = reconstruct_prune(net, targets, spec.amount, calibration, spread=spec.scope == "global")
        for module, name in targets:
            torch_prune.custom_from_mask(module, name, masks[(id(module), name)])
    elif spec.scope == "global":
        torch_prune.global_unstructured(targets, pruning_method=torch_prune.L1Unstructured, amount=spec.amount)
    else:
        for module, name in targets:
            torch_prune.l1_unstructured(module, name, amount=spec.amount)
    return targets


def row_mask(score: torch.Tensor, amount: float) -> torch.Tensor:
    """1 where a weight is kept: the `amount` share of lowest scores of each output row set to 0."""
    flat = score.reshape(score.shape[0], -1)
    drop = int(round(amount * flat.shape[1]))
    mask = torch.ones_like(flat)
    if drop:
        mask.scatter_(1, flat.argsort(dim=1)[:, :drop], 0.0)
    return mask


def input_norms(net: nn.Module, targets: list[Target], batches: Sequence[dict[str, torch.Tensor]]) -> dict[tuple[int, str], torch.Tensor]:
    """(id(module), weight name) -> the L2 norm of each input column (Conv: input channel) over `batches`."""
    if not batches:
        raise KilnError("compress.prune.criterion: activation needs calibration rows from the training split")
    sums: dict[tuple[int, str], torch.Tensor] = {}

    def add(key: tuple[int, str], x: Any, channels_first: bool = False) -> None:
        x = x.data if isinstance(x, PackedSequence) else x
        x = x.float().transpose(0, 1).flatten(1).T if channels_first else x.float().reshape(-1, x.shape[-1])
        sums[key] = sums.get(key, 0) + (x**2).sum(0)

    def hook(module: nn.Module, args: tuple[Any, ...], output: Any) -> None:
        add((id(module), "in"), args[0], isinstance(module, nn.Conv2d))
        if isinstance(module, nn.RNNBase):
            add((id(module), "out"), output[0])

    run_hooked(net, list({id(m): m for m, _ in targets}.values()), hook, batches)
    norms = {}
    for module, name in targets:
        if name.startswith("weight_hh"):  # the recurrent input: this layer's own states (second half: reverse direction)
            states = sums[(id(module), "out")].sqrt()
            size = module.hidden_size  # type: ignore[union-attr]
            norms[(id(module), name)] = states[size:] if name.endswith("_reverse") else states[:size]
        else:
            norms[(id(module), name)] = sums[(id(module), "in")].sqrt()
    return norms


def run_hooked(net: nn.Module, modules: Sequence[nn.Module], hook: Any, batches: Sequence[dict[str, torch.Tensor]]) -> None:
    """Run `batches` through `net` in eval mode without gradients, `hook` (a forward hook) on `modules`."""
    handles = [m.register_forward_hook(hook) for m in modules]
    was_training = net.training
    net.eval()
    try:
        with torch.inference_mode():
            for batch in batches:
                net(batch)
    finally:
        for handle in handles:
            handle.remove()
        net.train(was_training)
