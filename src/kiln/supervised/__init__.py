"""The supervised task: tables (numbers, categories, text, images) in, predicted columns out."""

from kiln.supervised.artifact import Model
from kiln.supervised.config import TASK, SupervisedConfig, load_supervised_config
from kiln.supervised.task import cross_validate, load_splits, train
from kiln.tasks import TASKS, Task

TASKS.register(TASK)(Task(TASK, load_supervised_config, train, TASK, "classification / regression on tables, text, images"))

__all__ = ["Model", "SupervisedConfig", "cross_validate", "load_splits", "load_supervised_config", "train"]
