"""One-shot pruning with layer-wise reconstruction (`criterion: reconstruct`): no gradients, no fine-tuning.

Layer by layer in forward order, each weight matrix W (with its bias) sees its real inputs on
calibration rows: a Linear layer its input rows, an LSTM/GRU `weight_ih` the layer's input tokens
x_t and `weight_hh` the previous step's state h_{t-1} (from the packed sequences, so padding never
counts), a Conv2d its unfolded input patches. The inputs come from the network pruned so far (Z)
and from the dense one (D). The mask is Wanda's (|w_ij| · ‖z_j‖, the lowest share of each output row);
then every row's kept weights and its bias are re-solved in closed form so that the pruned layer
reproduces the dense layer's outputs on the dense inputs: min ‖Z w_S − D w‖² + λ‖w_S‖² (ridge λ =
`DAMPING` × the mean input energy), the least-squares step of SparseGPT/OBS (Frantar & Alistarh 2023)
solved exactly per row. An LSTM's W_ih and W_hh feed the same gate sums, so they are solved together
(each keeps its own share per row). Later layers correct the error of earlier ones, as their Z comes
from the already-pruned network.

`scope: global` (the default) spreads the zeros unevenly: each matrix alone is pruned (and re-solved)
at shares 0.1 … 0.9, the change of the network's outputs on the calibration rows noted, and the zeros
go, step by step, where they cost the least output change per weight, `amount` of all the weights
together. `scope: layer` prunes `amount` of every matrix."""

from __future__ import annotations

import copy
import math
from collections.abc import Sequence
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils.rnn import PackedSequence, pad_packed_sequence

from kiln.deploy.prune import Target, row_mask, run_hooked
from kiln.errors import KilnError

DAMPING = 0.01  # ridge, relative to the mean diagonal of ZᵀZ
CHUNK = 64  # output rows solved at once
Key = tuple[int, str]  # (id(module), weight name)


def reconstruct_prune(net: nn.Module, targets: list[Target], amount: float, batches: Sequence[dict[str, torch.Tensor]],
                      spread: bool = True) -> dict[Key, torch.Tensor]:
    """Prune `targets` of `net` in place (weights zeroed, the rest and the biases re-solved); the masks, 1 where
    kept. `spread`: shares per matrix by their effect on the outputs (else `amount` of each)."""
    if not batches:
        raise KilnError("compress.prune.criterion: reconstruct needs calibration rows from the training split")
    shares = allocate(net, targets, amount, batches) if spread else {(id(m), n): amount for m, n in targets}
    dense = copy.deepcopy(net).eval()
    dense_modules = dict(dense.named_modules())
    names: dict[int, list[str]] = {}
    for module, name in targets:
        names.setdefault(id(module), []).append(name)
    masks = {}
    for path, module in list(net.named_modules()):
        if id(module) not in names:
            continue
        pruned_inputs = layer_inputs(net, module, batches, path)
        dense_inputs = layer_inputs(dense, dense_modules[path], batches, path)
        for group in groups(module, names[id(module)]):
            kept = prune_rows(module, group, [shares[(id(module), n)] for n in group],
                              [pruned_inputs[n] for n in group], [dense_inputs[n] for n in group])
            masks.update({(id(module), name): mask for name, mask in zip(group, kept)})
    return masks


def allocate(net: nn.Module, targets: list[Target], amount: float, batches: Sequence[dict[str, torch.Tensor]]) -> dict[Key, float]:
    """A share per matrix, together `amount` of all their weights (rounded up to whole weights per row)."""
    reference = outputs(net, batches)
    levels = sorted({i / 10 for i in range(10)} | {amount, (1 + amount) / 2})
    sizes = {(id(m), n): getattr(m, n).numel() for m, n in targets}
    costs: dict[Key, list[float]] = {}
    for module, name in targets:  # each matrix alone, at every level
        inputs = layer_inputs(net, module, batches, name)[name]
        saved = {key: p.detach().clone() for key, p in module.named_parameters(recurse=False)}
        costs[(id(module), name)] = [0.0]
        for level in levels[1:]:
            prune_rows(module, [name], [level], [inputs], [inputs])
            costs[(id(module), name)].append(output_change(outputs(net, batches), reference))
            with torch.no_grad():
                for key, p in module.named_parameters(recurse=False):
                    p.copy_(saved[key])
    step, shares = dict.fromkeys(sizes, 0), {}
    budget, pruned = amount * sum(sizes.values()), 0.0

    def rise(key: Key) -> float:  # output change added per weight pruned by this matrix's next level
        i = step[key]
        return (costs[key][i + 1] - costs[key][i]) / (sizes[key] * (levels[i + 1] - levels[i]))

    while pruned < budget:
        key = min((k for k in sizes if step[k] + 1 < len(levels)), key=rise)
        more = sizes[key] * (levels[step[key] + 1] - levels[step[key]])
        if pruned + more >= budget:  # the last matrix takes what is left, whole weights per row, rounded up
            shapes = {(id(m), n): getattr(m, n).reshape(len(getattr(m, n)), -1).shape for m, n in targets}
            others = sum(r * round(levels[step[k]] * c) for k, (r, c) in shapes.items() if k != key)
            rows, cols = shapes[key]
            shares[key] = min(cols, math.ceil((budget - others) / rows)) / cols
            break
        step[key] += 1
        pruned += more
    return {key: shares.get(key, levels[step[key]]) for key in sizes}


def outputs(net: nn.Module, batches: Sequence[dict[str, torch.Tensor]]) -> list[torch.Tensor]:
    net.eval()
    with torch.inference_mode():
        found = [net(batch) for batch in batches]
    return [t.double() for out in found for t in (out.values() if isinstance(out, dict) else [out])]


def output_change(found: list[torch.Tensor], reference: list[torch.Tensor]) -> float:
    """Mean squared change of the network's outputs (logits)."""
    return sum(float((a - b).pow(2).sum()) for a, b in zip(found, reference)) / sum(t.numel() for t in reference)


def groups(module: nn.Module, names: list[str]) -> list[list[str]]:
    """Weights solved together: an LSTM's W_ih and W_hh feed the same gate sums (a GRU's do not: r gates W_hn h)."""
    if isinstance(module, nn.LSTM):
        pairs = [[n, n.replace("_ih_", "_hh_")] for n in names if "_ih_" in n and n.replace("_ih_", "_hh_") in names]
        return pairs + [[n] for n in names if not any(n in p for p in pairs)]
    return [[n] for n in names]


def prune_rows(module: nn.Module, names: list[str], shares: list[float], zs: list[torch.Tensor],
               ds: list[torch.Tensor]) -> list[torch.Tensor]:
    """Mask the weight matrices `names` of `module` (its share of every output row of each) and re-solve each
    row's kept weights and its bias against their inputs `zs` (pruned net) and `ds` (dense net); the masks."""
    weights = [getattr(module, name) for name in names]
    biases = [b for b in (getattr(module, n.replace("weight", "bias"), None) for n in names) if b is not None]
    sizes = [w[0].numel() for w in weights]
    bias = [sum(b.detach() for b in biases)[:, None]] if biases else []  # an LSTM's two biases add up
    w = torch.cat([x.detach().reshape(len(x), -1) for x in weights] + bias, 1).double()
    ones = [torch.ones(len(zs[0]), 1, dtype=torch.float64)] if biases else []  # the bias: an input of ones, never pruned
    z, d = torch.cat(zs + ones, 1), torch.cat(ds + ones, 1)
    gram = z.T @ z
    bounds = [(sum(sizes[:i]), sum(sizes[: i + 1])) for i in range(len(sizes))]
    energy = gram.diagonal().sqrt()
    keep = torch.ones(w.shape, dtype=torch.bool)
    for (a, b), share in zip(bounds, shares):
        keep[:, a:b] = row_mask(w[:, a:b].abs() * energy[a:b], share).bool()
    solved = solve_rows(gram, z.T @ d @ w.T, keep)
    with torch.no_grad():
        for weight, (a, b) in zip(weights, bounds):
            weight.copy_(solved[:, a:b].reshape(weight.shape).to(weight.dtype))
        if biases:  # the first bias takes the change (an LSTM's bias_hh stays as it was)
            biases[0].copy_((solved[:, -1] - sum(t.detach().double() for t in biases[1:])).to(biases[0].dtype))
    return [keep[:, a:b].reshape(weight.shape).to(weight.dtype) for weight, (a, b) in zip(weights, bounds)]


def solve_rows(gram: torch.Tensor, rhs: torch.Tensor, keep: torch.Tensor) -> torch.Tensor:
    """Per output row r: w_S = (G_SS + λI)⁻¹ rhs_S[:, r] on its kept inputs S = keep[r], zero elsewhere."""
    damp = DAMPING * float(gram.diagonal().mean()) + 1e-12
    eye = torch.eye(len(gram), dtype=gram.dtype)
    out = torch.zeros(keep.shape, dtype=gram.dtype)
    for start in range(0, len(keep), CHUNK):
        m = keep[start : start + CHUNK].to(gram.dtype)
        system = gram * m[:, :, None] * m[:, None, :] + eye * (1 - m + damp * m)[:, None, :]
        out[start : start + CHUNK] = torch.linalg.solve(system, rhs.T[start : start + CHUNK] * m)
    return out


def layer_inputs(net: nn.Module, module: nn.Module, batches: Sequence[dict[str, torch.Tensor]], where: str) -> dict[str, torch.Tensor]:
    """Weight name -> the rows it multiplies, over `batches` (float64, one row per token / sample / patch)."""
    rows: dict[str, list[torch.Tensor]] = {}

    def hook(mod: nn.Module, args: tuple[Any, ...], output: Any) -> None:
        for name, x in inputs_of(mod, args[0], output).items():
            rows.setdefault(name, []).append(x.detach().double())

    run_hooked(net, [module], hook, batches)
    if not rows:
        raise KilnError(f"compress.prune.criterion: reconstruct saw no inputs of {where} on the calibration rows")
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
