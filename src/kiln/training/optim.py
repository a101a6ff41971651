"""Optimizers and learning-rate schedules from the trainer config."""

from __future__ import annotations

import math
from typing import Any

import torch
from torch.optim.lr_scheduler import LambdaLR, LRScheduler, ReduceLROnPlateau, StepLR

from kiln.registry import Registry

OPTIMIZERS: Registry[Any] = Registry("optimizer")


@OPTIMIZERS.register("sgd")
def _sgd(params: Any, cfg: Any) -> torch.optim.Optimizer:
    return torch.optim.SGD(params, lr=cfg.learning_rate, momentum=cfg.momentum, weight_decay=cfg.l2)


@OPTIMIZERS.register("adam")
def _adam(params: Any, cfg: Any) -> torch.optim.Optimizer:
    return torch.optim.Adam(params, lr=cfg.learning_rate, weight_decay=cfg.l2)


@OPTIMIZERS.register("adamw")
def _adamw(params: Any, cfg: Any) -> torch.optim.Optimizer:
    return torch.optim.AdamW(params, lr=cfg.learning_rate, weight_decay=cfg.l2)


@OPTIMIZERS.register("rmsprop")
def _rmsprop(params: Any, cfg: Any) -> torch.optim.Optimizer:
    return torch.optim.RMSprop(params, lr=cfg.learning_rate, weight_decay=cfg.l2)


def make_optimizer(model: torch.nn.Module, cfg: Any) -> torch.optim.Optimizer:
    """L2 is applied as weight decay (the gradient of λ/2·‖w‖²); L1 is added to the loss by the trainer.
    `trainer.freeze` and `trainer.layer_lr_decay` shape the parameter groups (see parameter_groups)."""
    return OPTIMIZERS.get(cfg.optimizer)(parameter_groups(model, cfg), cfg)


def parameter_groups(model: torch.nn.Module, cfg: Any) -> list[dict[str, Any]]:
    """Freeze what `trainer.freeze` names and group the rest by learning rate.

    freeze: "embeddings" = every nn.Embedding inside the input encoders; "encoder" = the input
    encoders entirely (only the trunk and heads learn). layer_lr_decay d: in an encoder with a
    stack of L layers (`layers` or `blocks`), layer i (0 = bottom) learns at lr * d**(L - i), its
    embeddings at lr * d**(L + 1), everything else at lr (the usual fine-tuning recipe for
    pre-trained encoders: lower layers hold more general features and move less).
    """
    encoders = getattr(model, "encoders", None)
    freeze = set(getattr(cfg, "freeze", []) or [])
    if encoders is not None and freeze:
        frozen = [encoders] if "encoder" in freeze else [m for m in encoders.modules() if isinstance(m, torch.nn.Embedding)]
        for module in frozen:
            module.requires_grad_(False)
    scale: dict[int, float] = {}
    decay = getattr(cfg, "layer_lr_decay", None)
    for encoder in encoders if encoders is not None and decay is not None else []:
        stacks = [(n, m) for n, m in encoder.named_modules() if n.split(".")[-1] in ("layers", "blocks", "layer") and isinstance(m, torch.nn.ModuleList)]
        if not stacks:
            continue
        stack = stacks[0][1]
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
    return [{"params": ps, "lr": cfg.learning_rate * s} for s, ps in sorted(groups.items(), reverse=True)]


def make_schedule(optimizer: torch.optim.Optimizer, cfg: Any, steps_per_epoch: int) -> tuple[LRScheduler | ReduceLROnPlateau | None, str]:
    """Return (scheduler, when) where `when` is "step", "epoch" or "plateau"."""
    sched = cfg.lr_schedule
    total = max(1, cfg.epochs * steps_per_epoch)
    warmup = int(sched.warmup if sched.warmup >= 1 else sched.warmup * total)
    floor = sched.min_lr / cfg.learning_rate
    if sched.type == "step":
        return StepLR(optimizer, step_size=sched.step_size, gamma=sched.gamma), "epoch"
    if sched.type == "plateau":
        return ReduceLROnPlateau(optimizer, factor=sched.factor, patience=sched.patience, min_lr=sched.min_lr), "plateau"
    if sched.type == "cosine":
        return LambdaLR(optimizer, lambda s: floor + (1 - floor) * 0.5 * (1 + math.cos(math.pi * min(s, total) / total))), "step"
    if sched.type == "linear_warmup":
        def ramp(step: int) -> float:
            if step < warmup:
                return (step + 1) / warmup
            return max(floor, 1.0 - (step - warmup) / max(1, total - warmup))

        return LambdaLR(optimizer, ramp), "step"
    return None, "none"
