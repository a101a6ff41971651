"""Optimizers from the trainer config, with parameter groups for freezing, layer-wise learning
rates and weight decay on matrices only."""

from __future__ import annotations

from typing import Any

import torch

from kiln.errors import KilnError
from kiln.registry import Registry

OPTIMIZERS: Registry[Any] = Registry("optimizer")


def _betas(cfg: Any) -> dict[str, Any]:
    return {"betas": tuple(cfg.betas)} if cfg.betas is not None else {}


def _fused(device: torch.device) -> dict[str, Any]:
    """Adam(W)'s fused kernel on CPU and CUDA: one pass over each tensor instead of a dozen (on CPU about
    5x less optimizer time for the SST-2 n-gram table; docs/training.md, benchmarks/fused_adam.py)."""
    return {"fused": True} if device.type in ("cpu", "cuda") else {}


@OPTIMIZERS.register("sgd")
def _sgd(groups: Any, cfg: Any, device: torch.device) -> torch.optim.Optimizer:
    return torch.optim.SGD(groups, lr=cfg.learning_rate, momentum=cfg.momentum)


@OPTIMIZERS.register("adam")
def _adam(groups: Any, cfg: Any, device: torch.device) -> torch.optim.Optimizer:
    return torch.optim.Adam(groups, lr=cfg.learning_rate, **_betas(cfg), **_fused(device))


@OPTIMIZERS.register("adamw")
def _adamw(groups: Any, cfg: Any, device: torch.device) -> torch.optim.Optimizer:
    return torch.optim.AdamW(groups, lr=cfg.learning_rate, **_betas(cfg), **_fused(device))


@OPTIMIZERS.register("rmsprop")
def _rmsprop(groups: Any, cfg: Any, device: torch.device) -> torch.optim.Optimizer:
    return torch.optim.RMSprop(groups, lr=cfg.learning_rate)


def make_optimizer(net: torch.nn.Module, cfg: Any, device: torch.device) -> torch.optim.Optimizer:
    """The optimizer over `parameter_groups`; each group's weight decay is l2 (every parameter)
    plus weight_decay (matrices and embeddings only). L1 is added to the loss by the trainer."""
    groups = []
    for group in parameter_groups(net, cfg):
        params = group.pop("params")
        split = [[p for p in params if p.dim() >= 2], [p for p in params if p.dim() < 2]] if cfg.weight_decay else [params]
        for i, part in enumerate(split):
            if part:
                decay = cfg.l2 + (cfg.weight_decay if i == 0 and cfg.weight_decay else 0.0)
                groups.append({**group, "params": part, "weight_decay": decay})
    return OPTIMIZERS.get(cfg.optimizer)(groups, cfg, device)


def parameter_groups(model: torch.nn.Module, cfg: Any) -> list[dict[str, Any]]:
    """Freeze what `trainer.freeze` names and group the rest by learning rate.

    freeze: "embeddings" = every nn.Embedding inside the input encoders; "encoder" = the input
    encoders entirely (only the trunk and heads learn). layer_lr_decay d: in an encoder with a
    stack of L layers (`layers` or `blocks`), layer i (0 = bottom) learns at lr * d**(L - i), its
    embeddings at lr * d**(L + 1), everything else at lr (the usual fine-tuning recipe for
    pre-trained encoders: lower layers hold more general features and move less). A network
    without input encoders (a GPT language model) is treated as one encoder.
    """
    encoders = getattr(model, "encoders", None)
    if encoders is None:
        encoders = [model]
    freeze = set(getattr(cfg, "freeze", []) or [])
    if freeze:
        frozen = list(encoders) if "encoder" in freeze else [m for e in encoders for m in e.modules() if isinstance(m, torch.nn.Embedding)]
        for module in frozen:
            module.requires_grad_(False)
    scale: dict[int, float] = {}
    decay = getattr(cfg, "layer_lr_decay", None)
    for encoder in encoders if decay is not None else []:
        stacks = [m for n, m in encoder.named_modules() if n.split(".")[-1] in ("layers", "blocks", "layer") and isinstance(m, torch.nn.ModuleList)]
        if not stacks:
            continue
        stack = stacks[0]
        for i, layer in enumerate(stack):
            for p in layer.parameters():
                scale[id(p)] = decay ** (len(stack) - i)
        for module in encoder.modules():
            if isinstance(module, torch.nn.Embedding):
                for p in module.parameters():
                    scale[id(p)] = decay ** (len(stack) + 1)
    groups: dict[float, list[torch.nn.Parameter]] = {}
    for p in model.parameters():
        if p.requires_grad:
            groups.setdefault(scale.get(id(p), 1.0), []).append(p)
    if not groups:
        raise KilnError("trainer.freeze leaves no parameter to train")
    return [{"params": ps, "lr": cfg.learning_rate * s} for s, ps in sorted(groups.items(), reverse=True)]
