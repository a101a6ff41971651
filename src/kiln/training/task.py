"""What the trainer asks of a task: its rounds, the batches of each optimizer step, the loss of a
batch and the metrics at the end of a round. Supervised tables, language modelling and masked-LM
pre-training each implement this; the loop itself (kiln.training.Trainer) is shared."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING, Any, Protocol

import torch
from torch import nn

if TYPE_CHECKING:
    from kiln.training.trainer import Trainer


class TrainingTask(Protocol):
    unit: str  # "epoch" or "iteration": names a round in progress lines and the history's x column
    has_validation: bool

    def setup(self, trainer: "Trainer") -> None:
        """Move data to the trainer's device; fix evaluation batches."""

    def rounds(self) -> Sequence[int]:
        """Optimizer steps in each round (an epoch, or an evaluation interval)."""

    def round_steps(self, round_index: int, first_step: int) -> Iterator[list[Any]]:
        """For each optimizer step of the round, its micro-batches (gradient accumulation)."""

    def loss(self, net: nn.Module, batch: Any) -> tuple[torch.Tensor, float]:
        """(mean loss over the batch, the batch's weight in the round's mean training loss)."""

    def end_round(self, trainer: "Trainer", round_index: int, round_time: float) -> dict[str, Any]:
        """History columns of a finished round: its position (epoch / iteration), validation metrics, ..."""
