"""The supervised task: tables (numbers, categories, text, images) in, predicted columns out."""

from kiln.supervised.artifact import Model
from kiln.supervised.config import TASK, SupervisedConfig, load_supervised_config
from kiln.supervised.prepared import PreparedData
from kiln.supervised.task import cross_validate, load_splits, prepare_data, prepared_key, train
from kiln.tasks import TASKS, Task

TASKS.register(TASK)(Task(TASK, load_supervised_config, train, TASK, "classification / regression on tables, text, images",
                          prepare_data, prepared_key))

__all__ = ["Model", "PreparedData", "SupervisedConfig", "cross_validate", "load_splits", "load_supervised_config", "prepare_data", "train"]
