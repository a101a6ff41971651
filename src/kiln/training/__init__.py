"""kiln's one training engine: the Trainer loop, the task interface, callbacks, optimizers,
schedules, progress output, checkpoints and the run-directory lifecycle."""

from kiln.training.callbacks import Callback, ConvergenceCheck, EarlyStopping, Monitor, RestoreBest
from kiln.training.config import EpochTrainerConfig, IterationTrainerConfig, TrainerConfig
from kiln.training.run import Run, load_run
from kiln.training.task import TrainingTask
from kiln.training.trainer import Trainer

__all__ = ["Callback", "ConvergenceCheck", "EarlyStopping", "EpochTrainerConfig", "IterationTrainerConfig", "Monitor",
           "RestoreBest", "Run", "load_run", "Trainer", "TrainerConfig", "TrainingTask"]
