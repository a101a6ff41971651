"""One-shot pruning with layer-wise reconstruction (`criterion: reconstruct`), no gradients.

Layer by layer in forward order, each weight matrix W (with its bias) sees its real inputs on
calibration rows: a Linear layer its input rows, an LSTM/GRU `weight_ih` the layer's input tokens
x_t and `weight_hh` the previous step's state h_{t-1} (from the packed sequences, so padding never
counts), a Conv2d its unfolded input patches. The inputs come from the network pruned so far (Z)
and from the dense one (D). The mask is Wanda's (|w_ij| · ‖z_j‖, the lowest `amount` of each output
row); then every row's kept weights and its bias are re-solved in closed form so that the pruned
layer reproduces the dense layer's outputs on the dense inputs: min ‖Z w_S − D w‖² + λ‖w_S‖²
(ridge λ = `DAMPING` × the mean input energy), i.e. (Z_SᵀZ_S + λI) w_S = Z_Sᵀ D w. This is the
least-squares step of SparseGPT/OBS (Frantar & Alistarh 2023) solved exactly per row; later layers
correct the error of earlier ones because their Z comes from the already-pruned network."""

from __future__ import annotations

import copy
from collections.abc import Sequence
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils.rnn import PackedSequence, pad_packed_sequence

from kiln.deploy.prune import row_mask
from kiln.errors import KilnError

DAMPING = 0.01  # ridge, relative to the mean diagonal of ZᵀZ
CHUNK = 64  # output rows solved at once


def reconstruct_prune(net: nn.Module, targets: list[tuple[nn.Module, str]], amount: float,
                      batches: Sequence[dict[str, torch.Tensor]]) -> dict[tuple[int, str], torch.Tensor]:
    """Prune `targets` of `net` in place (weights zeroed and the rest re-solved); the masks, 1 where kept."""
    if not batches:
        raise KilnError("compress.prune.criterion: reconstruct needs calibration rows from the training split")
    dense = copy.deepcopy(net).eval()
    dense_modules = dict(dense.named_modules())
    names: dict[int, list[str]] = {}
    for module, name in targets:
        names.setdefault(id(module), []).append(name)
    masks = {}
    for path, module in list(net.named_modules()):
        if id(module) not in names:
            continue
        pruned_inputs = layer_inputs(net, module, batches)
        dense_inputs = layer_inputs(dense, dense_modules[path], batches)
        for name in names[id(module)]:
            if name not in pruned_inputs:
                raise KilnError(f"compress.prune.criterion: reconstruct saw no inputs of {path}.{name} on the calibration rows")
            masks[(id(module), name)] = prune_matrix(module, name, amount, pruned_inputs[name], dense_inputs[name])
    return masks


def prune_matrix(module: nn.Module, name: str, amount: float, z: torch.Tensor, d: torch.Tensor) -> torch.Tensor:
    """Mask one weight matrix by |w|·‖z‖ per row and re-solve its kept weights (and bias); returns the mask."""
    weight = getattr(module, name)
    bias = getattr(module, name.replace("weight", "bias"), None)
    w = weight.detach().reshape(weight.shape[0], -1).double()
    if bias is not None:  # the bias is one more, never pruned, input column of ones
        w = torch.cat([w, bias.detach().double()[:, None]], 1)
        z, d = (torch.cat([m, torch.ones(len(m), 1, dtype=m.dtype)], 1) for m in (z, d))
    gram = z.T @ z
    rhs = z.T @ d @ w.T
    cols = weight[0].numel()
    if MASK == "obs":
        full = obs_mask(gram, rhs, cols, amount, STEPS)
        mask = full[:, :cols]
    else:
        score = w[:, :cols].abs() * gram.diagonal()[:cols].sqrt()
        mask = row_mask(score, amount).bool()
        full = torch.cat([mask, torch.ones(len(mask), 1, dtype=torch.bool)], 1) if bias is not None else mask
    solved = solve_rows(gram, rhs, full)
    with torch.no_grad():
        weight.copy_(solved[:, : weight[0].numel()].reshape(weight.shape).to(weight.dtype))
        if bias is not None:
            bias.copy_(solved[:, -1].to(bias.dtype))
    return mask.reshape(weight.shape).to(weight.dtype)


MASK = "activation"
STEPS = 4


def obs_mask(gram: torch.Tensor, rhs: torch.Tensor, cols: int, amount: float, steps: int) -> torch.Tensor:
    """Optimal-brain-surgeon mask, per row, in `steps` rounds: drop the kept weights whose removal (with the
    others re-solved) raises the output error least, w_j² / [(G_SS)⁻¹]_jj."""
    keep = torch.ones(rhs.shape[1], len(gram), dtype=torch.bool)
    for step in range(1, steps + 1):
        w, inv_diag = solve_rows(gram, rhs, keep, diagonal=True)
        score = w**2 / inv_diag
        score[~keep] = float("inf")
        score[:, cols:] = float("inf")
        drop = round(amount * cols * step / steps) - int((~keep[0]).sum())
        if drop > 0:
            keep.scatter_(1, score.topk(drop, dim=1, largest=False).indices, False)
    return keep


def solve_rows(gram: torch.Tensor, rhs: torch.Tensor, keep: torch.Tensor, diagonal: bool = False) -> Any:
    """Per output row r: w_S = (G_SS + λI)⁻¹ rhs_S[:, r] on its kept inputs S = keep[r], zero elsewhere."""
    damp = DAMPING * float(gram.diagonal().mean()) + 1e-12
    eye = torch.eye(len(gram), dtype=gram.dtype)
    out = torch.zeros(keep.shape, dtype=gram.dtype)
    diag = torch.ones(keep.shape, dtype=gram.dtype)
    for start in range(0, len(keep), CHUNK):
        m = keep[start : start + CHUNK].to(gram.dtype)
        system = gram * m[:, :, None] * m[:, None, :] + eye * (1 - m + damp * m)[:, None, :]
        if diagonal:
            inverse = torch.linalg.inv(system)
            out[start : start + CHUNK] = (inverse @ (rhs.T[start : start + CHUNK] * m)[:, :, None])[:, :, 0]
            diag[start : start + CHUNK] = inverse.diagonal(dim1=1, dim2=2)
        else:
            out[start : start + CHUNK] = torch.linalg.solve(system, rhs.T[start : start + CHUNK] * m)
    return (out, diag) if diagonal else out


def layer_inputs(net: nn.Module, module: nn.Module, batches: Sequence[dict[str, torch.Tensor]]) -> dict[str, torch.Tensor]:
    """Weight name -> the rows it multiplies, over `batches` (float64, one row per token / sample / patch)."""
    rows: dict[str, list[torch.Tensor]] = {}

    def hook(mod: nn.Module, args: tuple[Any, ...], output: Any) -> None:
        for name, x in inputs_of(mod, args[0], output).items():
            rows.setdefault(name, []).append(x.detach().double())

    handle = module.register_forward_hook(hook)
    was_training = net.training
    net.eval()
    try:
        with torch.inference_mode():
            for batch in batches:
                net(batch)
    finally:
        handle.remove()
        net.train(was_training)
    return {name: torch.cat(parts) for name, parts in rows.items()}


def inputs_of(module: nn.Module, x: Any, output: Any) -> dict[str, torch.Tensor]:
    if isinstance(module, nn.Linear):
        return {"weight": x.reshape(-1, x.shape[-1])}
    if isinstance(module, nn.Conv2d):
        if module.groups != 1 or isinstance(module.padding, str) or module.padding_mode != "zeros":
            raise KilnError("compress.prune.criterion: reconstruct covers Conv2d layers with groups 1 and numeric zero padding")
        patches = F.unfold(x, module.kernel_size, module.dilation, module.padding, module.stride)
        return {"weight": patches.transpose(1, 2).reshape(-1, patches.shape[1])}
    if isinstance(module, nn.RNNBase):
        return recurrent_inputs(module, x, output[0])
    raise KilnError(f"compress.prune.criterion: reconstruct does not cover {type(module).__name__} layers")


def recurrent_inputs(module: nn.RNNBase, x: Any, y: Any) -> dict[str, torch.Tensor]:
    """x_t for weight_ih and h_{t-1} for weight_hh (reverse direction: h_{t+1}), real tokens only."""
    if module.num_layers != 1:
        raise KilnError("compress.prune.criterion: reconstruct covers one-layer LSTM/GRU modules (kiln stacks them as modules)")
    if isinstance(x, PackedSequence):
        x, lengths = pad_packed_sequence(x, batch_first=True)
        y, _ = pad_packed_sequence(y, batch_first=True)
    else:
        x, y = (x, y) if module.batch_first else (x.transpose(0, 1), y.transpose(0, 1))
        lengths = torch.full((x.shape[0],), x.shape[1])
    real = torch.arange(x.shape[1])[None, :] < lengths[:, None]  # padded outputs are zero, so h after the last token is 0
    size = module.hidden_size
    zero = y.new_zeros(y.shape[0], 1, size)
    out = {"weight_ih_l0": x[real], "weight_hh_l0": torch.cat([zero, y[:, :-1, :size]], 1)[real]}
    if module.bidirectional:
        out["weight_ih_l0_reverse"] = x[real]
        out["weight_hh_l0_reverse"] = torch.cat([y[:, 1:, size:], zero], 1)[real]
    return out
