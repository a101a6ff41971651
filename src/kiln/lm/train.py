"""The language-model training loop: seeded random blocks, AdamW, warm-up + cosine schedule,
gradient accumulation and clipping, optional bf16 autocast and torch.compile, periodic validation,
atomic checkpoints and exact resume."""

from __future__ import annotations

import contextlib
import math
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import torch
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn
from torch import Tensor, nn

from kiln.errors import KilnError
from kiln.io import load_state, save_state
from kiln.runtime import read_checkpoint, restore_rng, rng_state
from kiln.lm.data import BlockSampler, Sampler, iteration_generator

LMCallback = Callable[["LMTrainer", dict[str, Any]], None]
CHECKPOINT = "checkpoint.safetensors"


def perplexity(loss: float) -> float:
    """exp(mean cross-entropy in nats): the effective number of equally likely next tokens."""
    return math.exp(loss) if loss < 700 else float("inf")


def learning_rate(cfg: Any, iteration: int) -> float:
    """Linear warm-up over `warmup` steps, then cosine decay to `min_lr` at the last iteration."""
    if iteration < cfg.warmup:
        return cfg.learning_rate * (iteration + 1) / cfg.warmup
    span = max(1, cfg.iterations - 1 - cfg.warmup)
    progress = min(1.0, (iteration - cfg.warmup) / span)
    return cfg.min_lr + 0.5 * (1.0 + math.cos(math.pi * progress)) * (cfg.learning_rate - cfg.min_lr)


def make_adamw(net: nn.Module, cfg: Any, device: torch.device) -> torch.optim.AdamW:
    """AdamW with weight decay on matrices (linear weights, embeddings) only; biases and norms are not decayed."""
    params = [p for p in net.parameters() if p.requires_grad]  # the tied matrix appears once
    groups = [
        {"params": [p for p in params if p.dim() >= 2], "weight_decay": cfg.weight_decay},
        {"params": [p for p in params if p.dim() < 2], "weight_decay": 0.0},
    ]
    extra = {"fused": True} if device.type == "cuda" else {}
    return torch.optim.AdamW(groups, lr=cfg.learning_rate, betas=tuple(cfg.betas), **extra)


class LMTrainer:
    """Trains a kiln.lm.gpt.GPT on 1-D token-id tensors; `fit` returns the history (one row per evaluation)."""

    def __init__(
        self,
        net: nn.Module,
        cfg: Any,
        device: torch.device,
        checkpoint_dir: Path | None = None,
        callbacks: Sequence[LMCallback] = (),
        progress: bool = True,
        sampler: Sampler | None = None,
    ) -> None:
        self.net = net.to(device)
        self.cfg, self.device = cfg, device
        self.sampler: Sampler = sampler or BlockSampler(net.block_size)
        self.checkpoint_dir = checkpoint_dir
        self.callbacks = list(callbacks)
        self.progress = progress
        self.optimizer = make_adamw(self.net, cfg, device)
        self.history: list[dict[str, Any]] = []
        self.iteration = 0  # optimizer steps done
        self.step_net: nn.Module = torch.compile(self.net) if cfg.compile else self.net

    def autocast(self) -> Any:
        if self.cfg.precision == "bf16":
            return torch.autocast(device_type=self.device.type, dtype=torch.bfloat16)
        return contextlib.nullcontext()

    # -- evaluation ---------------------------------------------------------------------------
    @torch.no_grad()
    def estimate_loss(self, batches: list[tuple[Tensor, Tensor]]) -> float:
        """Mean loss over fixed (input, target) batches, in eval mode."""
        self.net.eval()
        total = torch.zeros((), device=self.device)
        for x, y in batches:
            with self.autocast():
                _, loss = self.net(x.to(self.device), y.to(self.device))
            total += loss.float()
        self.net.train()
        return float(total) / len(batches)

    # -- training -----------------------------------------------------------------------------
    def fit(self, train: Tensor, validation: Tensor, resume: bool = False) -> list[dict[str, Any]]:
        cfg = self.cfg
        train_ids = train.to(self.device)
        val_batches = self.sampler.fixed(validation.to(self.device), cfg.eval_iters, cfg.batch_size, cfg.seed + 1)
        if resume:
            self._resume()
        per_step = cfg.batch_size * cfg.gradient_accumulation
        tokens_per_step = per_step * self.sampler.tokens_per_example
        self.net.train()
        loss_sum, steps, busy = torch.zeros((), device=self.device), 0, 0.0
        every = max(1, cfg.iterations // 200)
        bar = Progress(
            TextColumn("[bold]training"), BarColumn(bar_width=24), MofNCompleteColumn(), TimeElapsedColumn(),
            TextColumn("eta"), TimeRemainingColumn(), TextColumn("{task.fields[info]}"),
            console=Console(stderr=True), disable=not self.progress,
        )
        with bar:
            task = bar.add_task("training", total=cfg.iterations, completed=self.iteration, info="")
            last_val = ""
            while self.iteration < cfg.iterations:
                tick = time.perf_counter()
                it = self.iteration
                lr = learning_rate(cfg, it)
                for group in self.optimizer.param_groups:
                    group["lr"] = lr
                x_all, y_all = self.sampler.sample(train_ids, per_step, iteration_generator(cfg.seed, it))
                for micro in range(cfg.gradient_accumulation):
                    part = slice(micro * cfg.batch_size, (micro + 1) * cfg.batch_size)
                    with self.autocast():
                        _, loss = self.step_net(x_all[part], y_all[part])
                    (loss / cfg.gradient_accumulation).backward()
                    loss_sum += loss.detach().float() / cfg.gradient_accumulation
                if cfg.grad_clip:
                    nn.utils.clip_grad_norm_(self.net.parameters(), cfg.grad_clip)
                self.optimizer.step()
                self.optimizer.zero_grad(set_to_none=True)
                self.iteration += 1
                steps += 1
                if self.iteration % every == 0 or self.iteration == cfg.iterations:
                    running = float(loss_sum) / steps
                    if not math.isfinite(running):
                        raise KilnError(
                            f"training diverged at iteration {self.iteration} (loss {running}): lower trainer.learning_rate "
                            f"(now {cfg.learning_rate}) or set trainer.grad_clip"
                        )
                    bar.update(task, completed=self.iteration, info=f"loss {running:.4f}{last_val}")
                busy += time.perf_counter() - tick
                if self.iteration % cfg.eval_interval == 0 or self.iteration == cfg.iterations:
                    val = self.estimate_loss(val_batches)
                    row = {
                        "iteration": self.iteration,
                        "tokens": self.iteration * tokens_per_step,
                        "train_loss": float(loss_sum) / steps,
                        "validation_loss": val,
                        "validation_perplexity": perplexity(val),
                        "lr": lr,
                        "tokens_per_s": steps * tokens_per_step / busy if busy > 0 else None,
                    }
                    self.history.append(row)
                    last_val = f"  val {val:.4f}"
                    bar.update(task, info=f"loss {row['train_loss']:.4f}{last_val}")
                    self._checkpoint()
                    loss_sum, steps, busy = torch.zeros((), device=self.device), 0, 0.0
                    for callback in self.callbacks:
                        callback(self, row)
        return self.history

    def final_metrics(self, train: Tensor) -> dict[str, dict[str, float]]:
        """Validation from the last evaluation; train loss over fixed training batches, same estimator."""
        cfg = self.cfg
        train_loss = self.estimate_loss(self.sampler.fixed(train.to(self.device), cfg.eval_iters, cfg.batch_size, cfg.seed + 2))
        val_loss = self.history[-1]["validation_loss"]
        return {
            "validation": {"loss": val_loss, "perplexity": perplexity(val_loss)},
            "train": {"loss": train_loss, "perplexity": perplexity(train_loss)},
        }

    # -- checkpoints --------------------------------------------------------------------------
    def _state(self) -> dict[str, Any]:
        state = {
            "iteration": self.iteration,
            "history": self.history,
            "model": self.net.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            **rng_state(),
        }
        return state

    def _checkpoint(self) -> None:
        if self.checkpoint_dir is not None:
            save_state(self.checkpoint_dir / CHECKPOINT, self._state())

    def _resume(self) -> None:
        state = read_checkpoint(self.checkpoint_dir / CHECKPOINT if self.checkpoint_dir else None)
        self.net.load_state_dict(state["model"])
        self.optimizer.load_state_dict(state["optimizer"])
        restore_rng(state)
        self.history = list(state["history"])
        self.iteration = int(state["iteration"])


def checkpoint_iteration(checkpoint_dir: Path) -> int | None:
    path = checkpoint_dir / CHECKPOINT
    return int(load_state(path)["iteration"]) if path.is_file() else None
