"""Hyperparameter search (`kiln tune`, `kiln.tune`): the `tune:` config section, Optuna studies in
SQLite (embedded engine) or Ray Tune, pruning through a Trainer callback, data prepared once."""

from kiln.config import register_section
from kiln.tuning.config import TuneConfig

register_section("tune", TuneConfig)

from kiln.tuning.search import tune  # noqa: E402

__all__ = ["TuneConfig", "tune"]
