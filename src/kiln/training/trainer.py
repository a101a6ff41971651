"""The training loop: mini-batch/full-batch/stochastic descent, regularisation, schedules,
early stopping, per-epoch atomic checkpoints and exact resume."""

from __future__ import annotations

import gc
import math
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import torch
from torch import nn

from kiln.data.preprocessor import TensorData
from kiln.errors import KilnError
from kiln.features import Feature
from kiln.io import load_state, save_state
from kiln.runtime import read_checkpoint, restore_rng, rng_state
from kiln.training.optim import make_optimizer, make_schedule
from kiln.training.progress import EpochProgress

Callback = Callable[["Trainer", dict[str, Any]], None]
CHECKPOINT = "checkpoint.safetensors"
_LOWER_IS_BETTER = ("loss", "mse", "rmse", "mae")


class Trainer:
    """Fits a network on TensorData; `fit` returns the history (one dict per epoch)."""

    def __init__(
        self,
        net: nn.Module,
        outputs: Sequence[Feature],
        cfg: Any,
        device: torch.device,
        checkpoint_dir: Path | None = None,
        callbacks: Sequence[Callback] = (),
        progress: bool = True,
    ) -> None:
        self.net = net.to(device)
        self.outputs = list(outputs)
        self.cfg = cfg
        self.device = device
        self.checkpoint_dir = checkpoint_dir
        self.callbacks = list(callbacks)
        self.progress = progress
        self.optimizer = make_optimizer(self.net, cfg)
        self.history: list[dict[str, Any]] = []
        self.best: dict[str, Any] = {"value": None, "epoch": 0, "bad_epochs": 0, "weights": None}
        self.stop_reason = "max_epochs"
        self.step = 0

    # -- public -------------------------------------------------------------------------------
    def fit(self, train: TensorData, validation: TensorData | None = None, resume: bool = False) -> list[dict[str, Any]]:
        train, validation = train.to(self.device), validation.to(self.device) if validation is not None else None
        batch_size = len(train) if self.cfg.batch_size == "full" else min(int(self.cfg.batch_size), len(train))
        steps = math.ceil(len(train) / batch_size)
        self.scheduler, self.schedule_when = make_schedule(self.optimizer, self.cfg, steps)
        self._check_early_stopping(validation)
        start = self._resume() + 1 if resume else 1
        gc.collect()  # start from a clean heap: the data loading before leaves garbage that later collections would walk
        with EpochProgress(self.cfg.epochs, steps, enabled=self.progress) as bar:
            for epoch in range(start, self.cfg.epochs + 1):
                bar.start_epoch(epoch)
                tick = time.perf_counter()
                row = {"epoch": epoch, **self._train_epoch(train, batch_size, epoch, bar)}
                row["epoch_time"] = time.perf_counter() - tick
                if validation is not None:
                    row.update(self.evaluate_split(validation, prefix="validation"))
                row["lr"] = self.optimizer.param_groups[0]["lr"]
                self.history.append(row)
                stop = self._end_of_epoch(row)
                bar.finish_epoch(epoch, row)
                self._checkpoint(epoch)
                for callback in self.callbacks:
                    callback(self, row)
                if stop:
                    break
        if self.cfg.restore_best and self.best["weights"] is not None:
            self.net.load_state_dict(self.best["weights"])
        return self.history

    @torch.inference_mode()
    def predict_logits(self, data: TensorData) -> dict[str, torch.Tensor]:
        self.net.eval()
        parts: dict[str, list[torch.Tensor]] = {f.name: [] for f in self.outputs}
        size = self.cfg.eval_batch_size
        for start in range(0, len(data), size):
            inputs = {k: v[start : start + size].to(self.device) for k, v in data.inputs.items()}
            for name, logits in self.net(inputs).items():
                parts[name].append(logits.float().cpu())
        return {name: torch.cat(chunks) for name, chunks in parts.items()}

    def evaluate_split(self, data: TensorData, prefix: str) -> dict[str, float]:
        """Loss and scalar metrics over the whole split, as flat history columns."""
        logits = self.predict_logits(data)
        row: dict[str, float] = {}
        total = 0.0
        for feature in self.outputs:
            metrics = feature.metrics(logits[feature.name], data.targets[feature.name].cpu())
            total += metrics["loss"]
            tag = prefix if len(self.outputs) == 1 else f"{prefix}_{feature.name}"
            row.update({f"{tag}_{k}": v for k, v in metrics.items() if isinstance(v, (int, float)) and k != "loss"})
            if len(self.outputs) > 1:
                row[f"{tag}_loss"] = metrics["loss"]
        row[f"{prefix}_loss"] = total
        return row

    # -- one epoch ----------------------------------------------------------------------------
    def _train_epoch(self, data: TensorData, batch_size: int, epoch: int, bar: EpochProgress) -> dict[str, float]:
        self.net.train()
        order = torch.randperm(len(data), generator=torch.Generator().manual_seed(self.cfg.seed * 100_003 + epoch))
        loss_sum = torch.zeros((), device=self.device)
        seen: dict[str, list[torch.Tensor]] = {f.name: [] for f in self.outputs}  # logits, for the epoch's metric
        for i, start in enumerate(range(0, len(data), batch_size)):
            batch = data.take(order[start : start + batch_size].to(self.device))
            logits = self.net(batch.inputs)
            loss = self.outputs[0].loss(logits[self.outputs[0].name], batch.targets[self.outputs[0].name])
            for f in self.outputs[1:]:
                loss = loss + f.loss(logits[f.name], batch.targets[f.name])
            if self.cfg.l1 > 0:
                loss = loss + self.cfg.l1 * sum(p.abs().sum() for p in self.net.parameters() if p.dim() > 1)
            self.optimizer.zero_grad(set_to_none=True)
            loss.backward()
            if self.cfg.grad_clip:
                nn.utils.clip_grad_norm_(self.net.parameters(), self.cfg.grad_clip)
            self.optimizer.step()
            if self.schedule_when == "step":
                self.scheduler.step()
            self.step += 1
            n = len(batch.targets[self.outputs[0].name])
            loss_sum.add_(loss.detach(), alpha=n)
            for f in self.outputs:
                seen[f.name].append(logits[f.name].detach())
            bar.advance(i + 1, loss_sum, start + n)
        train_loss = float(loss_sum) / len(data)
        if not math.isfinite(train_loss):
            raise KilnError(
                f"training diverged at epoch {epoch} (loss {train_loss}): lower trainer.learning_rate "
                f"(now {self.cfg.learning_rate}) or set trainer.grad_clip"
            )
        row = {"train_loss": train_loss}
        order = order.to(self.device)
        for f in self.outputs:  # one metric pass per epoch over the logits seen while training (cheaper than per batch)
            name, value = f.running_metric(torch.cat(seen[f.name]), data.targets[f.name][order])
            tag = "train" if len(self.outputs) == 1 else f"train_{f.name}"
            row[f"{tag}_{name}"] = float(value) / len(data)
        return row

    # -- stopping, checkpoints ----------------------------------------------------------------
    def _metric_key(self) -> tuple[str, str]:
        es = self.cfg.early_stopping
        metric = es.metric if es else "validation.loss"
        key = metric.replace(".", "_")
        mode = es.mode if es and es.mode != "auto" else ("min" if key.endswith(_LOWER_IS_BETTER) else "max")
        return key, mode

    def _check_early_stopping(self, validation: TensorData | None) -> None:
        es = self.cfg.early_stopping
        if es and es.metric.startswith("validation") and validation is None:
            raise KilnError(f"trainer.early_stopping.metric is {es.metric} but there is no validation split; set data.split.validation > 0")

    def _end_of_epoch(self, row: dict[str, Any]) -> bool:
        if self.schedule_when == "epoch":
            self.scheduler.step()
        key, mode = self._metric_key()
        if key not in row:
            if self.cfg.early_stopping:
                options = ", ".join(k.replace("_", ".", 1) for k in row if k.startswith(("train_", "validation_")))
                raise KilnError(f"trainer.early_stopping.metric '{self.cfg.early_stopping.metric}' is not computed; valid: {options}")
            key, mode = "train_loss", "min"
        if self.schedule_when == "plateau":
            self.scheduler.step(row.get("validation_loss", row["train_loss"]))
        value = row[key]
        delta = self.cfg.early_stopping.min_delta if self.cfg.early_stopping else 0.0
        best = self.best["value"]
        improved = best is None or (value < best - delta if mode == "min" else value > best + delta)
        if improved:
            self.best.update(value=value, epoch=row["epoch"], bad_epochs=0)
            if "validation_loss" in row:
                self.best["weights"] = {k: v.detach().clone() for k, v in self.net.state_dict().items()}
        else:
            self.best["bad_epochs"] += 1
        es = self.cfg.early_stopping
        if es and self.best["bad_epochs"] >= es.patience:
            self.stop_reason = f"early_stopping ({key} did not improve for {es.patience} epochs)"
            return True
        tol = self.cfg.convergence_tol
        if tol is not None and len(self.history) > 1 and abs(self.history[-2]["train_loss"] - row["train_loss"]) < tol:
            self.stop_reason = f"converged (train loss changed < {tol})"
            return True
        return False

    def _state(self, epoch: int) -> dict[str, Any]:
        state = {
            "epoch": epoch,
            "step": self.step,
            "history": self.history,
            "best": self.best,
            "stop_reason": self.stop_reason,
            "model": self.net.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "scheduler": self.scheduler.state_dict() if self.scheduler is not None else None,
            **rng_state(),
        }
        return state

    def _checkpoint(self, epoch: int) -> None:
        if self.checkpoint_dir is not None:
            save_state(self.checkpoint_dir / CHECKPOINT, self._state(epoch))

    def _resume(self) -> int:
        """Restore everything from the last checkpoint; return the epoch it ended."""
        state = read_checkpoint(self.checkpoint_dir / CHECKPOINT if self.checkpoint_dir else None)
        self.net.load_state_dict(state["model"])
        self.optimizer.load_state_dict(state["optimizer"])
        if self.scheduler is not None and state["scheduler"] is not None:
            self.scheduler.load_state_dict(state["scheduler"])
        restore_rng(state)
        self.history, self.best, self.step = list(state["history"]), dict(state["best"]), int(state["step"])
        self.stop_reason = state["stop_reason"]
        if self.stop_reason != "max_epochs":
            return self.cfg.epochs  # the run had already stopped early
        return int(state["epoch"])


def checkpoint_epoch(checkpoint_dir: Path) -> int | None:
    """The epoch of the last checkpoint in a folder, or None."""
    path = checkpoint_dir / CHECKPOINT
    return int(load_state(path)["epoch"]) if path.is_file() else None
