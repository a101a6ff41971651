"""Training loop, optimizers and schedules."""

from kiln.train.trainer import Trainer

__all__ = ["Trainer"]
