"""Learning-rate schedules: one warm-up + cosine / linear decay for per-step schedules, and
step / plateau decays applied at the end of each round."""

from __future__ import annotations

import math
from typing import Any

import torch
from torch.optim.lr_scheduler import LambdaLR, ReduceLROnPlateau, StepLR

Scheduler = LambdaLR | StepLR | ReduceLROnPlateau


def lr_factor(schedule: Any, step: int, total: int, base_lr: float) -> float:
    """Multiplier of the base learning rate at optimizer step `step` (0-based) of `total`.

    Warm-up: linear from 1/warmup to 1 over the first `warmup` steps. Then `cosine` decays to
    min_lr at the last step, `linear_warmup` decays linearly towards 0 (never below min_lr), and
    `none` stays at 1.
    """
    warmup = schedule.warmup_steps(total)
    if step < warmup:
        return (step + 1) / warmup
    floor = schedule.min_lr / base_lr
    if schedule.type == "cosine":
        progress = min(1.0, (step - warmup) / max(1, total - 1 - warmup))
        return floor + 0.5 * (1.0 + math.cos(math.pi * progress)) * (1.0 - floor)
    if schedule.type == "linear_warmup":
        return max(floor, 1.0 - (step - warmup) / max(1, total - warmup))
    return 1.0


def make_schedule(optimizer: torch.optim.Optimizer, cfg: Any, total_steps: int) -> tuple[Scheduler, str]:
    """Return (scheduler, when): when is "step" (after every optimizer step), "round", "plateau" or
    "never" (a constant rate)."""
    sched = cfg.lr_schedule
    if sched.type == "step":
        return StepLR(optimizer, step_size=sched.step_size, gamma=sched.gamma), "round"
    if sched.type == "plateau":
        return ReduceLROnPlateau(optimizer, factor=sched.factor, patience=sched.patience, min_lr=sched.min_lr), "plateau"
    base = cfg.learning_rate
    scheduler = LambdaLR(optimizer, lambda step: lr_factor(sched, step, total_steps, base))
    constant = sched.type == "none" and sched.warmup_steps(total_steps) == 0
    return scheduler, "never" if constant else "step"  # a constant rate needs no per-step update
