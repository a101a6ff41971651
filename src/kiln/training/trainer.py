"""kiln's one training loop. A task (kiln.training.task.TrainingTask) supplies batches, loss and
evaluation; the Trainer owns everything else: optimizer steps, gradient accumulation, clipping,
L1, precision (fp32 / bf16 autocast), optional torch.compile, learning-rate schedules, the
divergence check, progress output, callbacks (early stopping, restore best, ...), one checkpoint
format and exact resume."""

from __future__ import annotations

import contextlib
import math
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import torch
from torch import nn

from kiln.errors import KilnError
from kiln.runtime import frozen_heap
from kiln.training.callbacks import Callback, Monitor, as_callback, standard_callbacks
from kiln.training.checkpoint import read_checkpoint, restore_rng, rng_state, save_checkpoint
from kiln.training.distributed import all_sum, rank_and_world
from kiln.training.optim import make_optimizer
from kiln.training.progress import TrainingProgress
from kiln.training.schedule import make_schedule
from kiln.training.task import TrainingTask


_NO_CONTEXT = contextlib.nullcontext()  # reusable: one object instead of one a micro-batch


class Trainer:
    """Fits `net` on a task; `fit` returns the history (one dict per round)."""

    def __init__(
        self,
        net: nn.Module,
        cfg: Any,
        device: torch.device,
        checkpoint_dir: Path | None = None,
        callbacks: Sequence[Callback | Callable[..., None]] = (),
        progress: bool | str = True,
    ) -> None:
        self.net = net.to(device)
        self.cfg, self.device = cfg, device
        self.checkpoint_dir = checkpoint_dir
        self.standard = standard_callbacks(cfg)
        self.callbacks = [as_callback(c) for c in callbacks]
        self.rank, self.world = rank_and_world()  # data parallelism (kiln.training.distributed): rank 0 writes
        self.progress_mode = progress if isinstance(progress, str) else ("auto" if progress else "off")
        if self.rank != 0:
            self.progress_mode = "off"
        self.optimizer = make_optimizer(self.net, cfg, device)
        self.step_net: nn.Module = torch.compile(self.net) if cfg.compile else self.net
        if self.world > 1:  # gradients are averaged over the ranks in backward()
            from torch.nn.parallel import DistributedDataParallel

            ids = [device.index if device.index is not None else torch.cuda.current_device()] if device.type == "cuda" else None
            self.step_net = DistributedDataParallel(self.step_net, device_ids=ids)
        self.history: list[dict[str, Any]] = []
        self.last_checkpoint = time.monotonic()
        self.step = 0  # optimizer steps done
        self.round = 0  # rounds done
        self.stopped = False
        self.stop_reason = ""
        self.unit = "epoch"
        es = cfg.early_stopping
        self.monitor = Monitor(es.metric if es else None, es.mode if es else "auto", es.min_delta if es else 0.0, es is not None)

    def autocast(self) -> Any:
        if self.cfg.precision == "bf16":
            return torch.autocast(device_type=self.device.type, dtype=torch.bfloat16)
        return _NO_CONTEXT

    def request_stop(self, reason: str) -> None:
        """Stop after the current round (callbacks call this)."""
        if not self.stopped:
            self.stopped, self.stop_reason = True, reason

    # -- the loop -----------------------------------------------------------------------------
    def fit(self, task: TrainingTask, resume: bool = False) -> list[dict[str, Any]]:
        self.task, self.unit = task, task.unit
        self.stop_reason = f"max_{task.unit}s"
        es = self.cfg.early_stopping
        if es and es.metric.startswith("validation") and not task.has_validation:
            raise KilnError(f"trainer.early_stopping.metric is {es.metric} but there is no validation data; "
                            "set data.split.validation > 0 (or data.validation)")
        task.setup(self)
        rounds = list(task.rounds())
        total = sum(rounds)
        self.scheduler, self.schedule_when = make_schedule(self.optimizer, self.cfg, total)
        every = self.standard + self.callbacks
        if resume:
            self._resume(every)
        for callback in every:
            callback.on_train_begin(self)
        self.last_checkpoint = time.monotonic()
        with TrainingProgress(task.unit, len(rounds), total, self.progress_mode) as progress, frozen_heap():
            progress.start(self.step)
            while self.round < len(rounds) and not self.stopped:
                row = self._round(task, self.round, rounds[self.round], progress)
                for callback in self.standard:
                    callback.on_round_end(self, row)
                progress.end_round(self.round, row)
                self._checkpoint(last=self.round >= len(rounds) or self.stopped)
                for callback in self.callbacks:
                    callback.on_round_end(self, row)
        for callback in every:
            callback.on_train_end(self)
        return self.history

    def _round(self, task: TrainingTask, index: int, steps: int, progress: TrainingProgress) -> dict[str, Any]:
        cfg, net, optimizer = self.cfg, self.net, self.optimizer
        net.train()
        loss_sum = torch.zeros((), device=self.device)
        weight = 0.0
        lr = optimizer.param_groups[0]["lr"]
        params = [p for group in optimizer.param_groups for p in group["params"]]
        each_step = self.schedule_when == "step"

        def running_loss() -> torch.Tensor:  # read by the progress bar when it redraws
            return loss_sum / max(weight, 1e-12)

        tick = time.perf_counter()
        for micro in task.round_steps(index, self.step):
            scale = 1.0 / len(micro)
            for i, batch in enumerate(micro):
                # a rank's slice of a global batch carries grad_scale (kiln.training.distributed.shard_rows)
                shard_scale = getattr(batch, "grad_scale", 1.0)
                with self._sync(i == len(micro) - 1):
                    with self.autocast():
                        loss, w = task.loss(self.step_net, batch)
                    if cfg.l1 > 0:
                        loss = loss + cfg.l1 * sum(p.abs().sum() for p in net.parameters() if p.dim() > 1)
                    (loss if scale * shard_scale == 1.0 else loss * (scale * shard_scale)).backward()
                loss_sum.add_(loss.detach().float(), alpha=w)
                weight += w
            if cfg.grad_clip:
                nn.utils.clip_grad_norm_(net.parameters(), cfg.grad_clip)
            lr = optimizer.param_groups[0]["lr"]
            optimizer.step()
            for p in params:  # optimizer.zero_grad(set_to_none=True), without its profiler scope
                p.grad = None
            if each_step:
                self.scheduler.step()
            self.step += 1
            progress.advance(self.step, running_loss)
        round_time = time.perf_counter() - tick
        total_loss, weight = all_sum([float(loss_sum), weight], self.device)
        train_loss = total_loss / max(weight, 1e-12)
        if not math.isfinite(train_loss):
            where = f"{task.unit} {index + 1}" if task.unit == "epoch" else f"iteration {self.step}"
            raise KilnError(f"training diverged at {where} (loss {train_loss}): lower trainer.learning_rate "
                            f"(now {cfg.learning_rate}) or set trainer.grad_clip")
        self.round = index + 1
        metrics = task.end_round(self, index, round_time)
        row = {task.unit: metrics.pop(task.unit, self.round), "train_loss": train_loss, **metrics, "lr": lr}
        self.history.append(row)
        if self.schedule_when == "round":
            self.scheduler.step()
        self.monitor.update(row, row[task.unit])
        if self.schedule_when == "plateau":
            self.scheduler.step(row.get("validation_loss", row["train_loss"]))
        return row

    def _sync(self, last: bool) -> Any:
        """DDP averages gradients on the last micro-batch of an optimizer step only."""
        if self.world > 1 and not last:
            return self.step_net.no_sync()
        return _NO_CONTEXT

    # -- checkpoints --------------------------------------------------------------------------
    def _checkpoint(self, last: bool) -> None:
        """Save after a round when `checkpoint_interval_s` has passed since the last save, and after the
        last round. Short rounds (a 9-batch epoch takes milliseconds) would otherwise spend more on
        checkpoints than on training; a killed run replays at most that many seconds, identically."""
        if self.checkpoint_dir is None or self.rank != 0:
            return
        if not last and time.monotonic() - self.last_checkpoint < self.cfg.checkpoint_interval_s:
            return
        self.last_checkpoint = time.monotonic()
        save_checkpoint(self.checkpoint_dir, {
            "round": self.round,
            "step": self.step,
            "history": self.history,
            "stopped": self.stopped,
            "stop_reason": self.stop_reason,
            "monitor": self.monitor.state_dict(),
            "callbacks": [c.state_dict() for c in self.standard],
            "model": self.net.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "scheduler": self.scheduler.state_dict(),
            **rng_state(),
        })

    def _resume(self, callbacks: list[Callback]) -> None:
        """Restore everything from the last checkpoint."""
        state = read_checkpoint(self.checkpoint_dir)
        try:
            self.net.load_state_dict(state["model"])
            self.optimizer.load_state_dict(state["optimizer"])
            self.scheduler.load_state_dict(state["scheduler"])
            restore_rng(state)
            self.history, self.step, self.round = list(state["history"]), int(state["step"]), int(state["round"])
            self.stopped, self.stop_reason = bool(state["stopped"]), str(state["stop_reason"])
            self.monitor.load_state_dict(state["monitor"])
            for callback, saved in zip(self.standard, state["callbacks"]):
                callback.load_state_dict(saved)
        except (KeyError, RuntimeError, ValueError, TypeError) as exc:
            raise KilnError(f"cannot resume from {self.checkpoint_dir}: the checkpoint does not match this run "
                            f"({type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''})") from None
