"""A rich progress bar per epoch showing loss and, at the end of the epoch, validation metrics."""

from __future__ import annotations

from typing import Any

import torch
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

_SHOWN = ("train_loss", "train_accuracy", "train_mae", "validation_loss", "validation_accuracy", "validation_f1", "validation_r2", "validation_mae")


class EpochProgress:
    """Context manager; no-op when disabled. Updates the bar ~20 times an epoch to stay cheap."""

    def __init__(self, epochs: int, steps: int, enabled: bool = True, console: Console | None = None) -> None:
        self.epochs, self.steps, self.enabled = epochs, steps, enabled
        self.every = max(1, steps // 20)
        self.progress = Progress(
            TextColumn("{task.description}", style="bold"), BarColumn(bar_width=20), MofNCompleteColumn(),
            TimeElapsedColumn(), TextColumn("{task.fields[info]}"), console=console or Console(stderr=True), disable=not enabled,
        )
        self.task: Any = None

    def __enter__(self) -> "EpochProgress":
        self.progress.__enter__()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.progress.__exit__(*exc)

    def start_epoch(self, epoch: int) -> None:
        if self.enabled:
            self.task = self.progress.add_task(f"epoch {epoch}/{self.epochs}", total=self.steps, info="")

    def advance(self, step: int, loss_sum: torch.Tensor, seen: int) -> None:
        if self.task is None or (step % self.every and step != self.steps):
            return
        self.progress.update(self.task, completed=step, info=f"loss {float(loss_sum) / max(1, seen):.4f}")

    def finish_epoch(self, epoch: int, row: dict[str, Any]) -> None:
        if self.task is None:
            return
        info = " ".join(f"{k.replace('validation', 'val').replace('accuracy', 'acc')} {row[k]:.4f}" for k in _SHOWN if k in row)
        self.progress.update(self.task, description=f"epoch {epoch}/{self.epochs}", completed=self.steps, info=info)
        self.task = None
