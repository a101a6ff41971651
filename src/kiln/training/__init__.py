"""Training loop, optimizers and schedules."""

from kiln.training.trainer import Trainer

__all__ = ["Trainer"]
