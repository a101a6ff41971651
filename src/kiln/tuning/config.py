"""The `tune:` config section: what to search, how, and for how long (kiln tune, docs/tuning.md)."""

from __future__ import annotations

import re
from typing import Annotated, Any, ClassVar, Literal, Union

from pydantic import Field, field_validator, model_validator

from kiln.config import Section
from kiln.training.callbacks import LOWER_IS_BETTER

METRIC = re.compile(r"^(train|validation)\.\w+$")
PATH = re.compile(r"^[A-Za-z_]\w*(\.[A-Za-z_]\w*)*$")


class FloatParam(Section):
    type: Literal["float"]
    low: float
    high: float
    log: bool = False  # sample uniformly in log space (learning rates)
    step: float | None = Field(None, gt=0)  # discretise (needed by the grid sampler)

    @model_validator(mode="after")
    def _range(self) -> "FloatParam":
        _check_range(self.low, self.high, self.log, self.step)
        return self


class IntParam(Section):
    type: Literal["int"]
    low: int
    high: int
    log: bool = False
    step: int = Field(1, ge=1)

    @model_validator(mode="after")
    def _range(self) -> "IntParam":
        _check_range(self.low, self.high, self.log, None if self.step == 1 else self.step)
        return self


class ChoiceParam(Section):
    type: Literal["choice"]
    values: list[Any] = Field(min_length=1)  # any YAML values: numbers, strings, lists ([64], [128, 64]), mappings


def _check_range(low: float, high: float, log: bool, step: float | None) -> None:
    if low >= high:
        raise ValueError(f"low ({low}) must be below high ({high})")
    if log and low <= 0:
        raise ValueError(f"log: true needs low > 0 (got {low})")
    if log and step is not None:
        raise ValueError("step cannot be combined with log: true")


ParamSpec = Annotated[Union[FloatParam, IntParam, ChoiceParam], Field(discriminator="type")]  # noqa: UP007


class SamplerConfig(Section):
    type: Literal["tpe", "random", "grid", "gp"] = "tpe"
    seed: int | None = 42  # same config + seed → same trials (with parallel: 1)
    startup_trials: int | None = Field(None, ge=0)  # tpe / gp: random trials before the model; default: scaled to tune.trials
    multivariate: bool = True  # tpe: model the parameters jointly (False: one independent model per parameter)
    ei_candidates: int = Field(24, ge=1)  # tpe: points drawn from the model per trial; the most promising is run
    good_fraction: float = Field(0.25, gt=0, lt=1)  # tpe: share of the finished trials modelled as the good ones (at most 25)


class PrunerConfig(Section):
    type: Literal["none", "median", "asha"] = "median"
    startup_trials: int = Field(5, ge=0)  # median: completed trials before any pruning
    warmup_epochs: int = Field(1, ge=0)  # median: rounds a trial always runs; asha: its minimum resource (≥ 1)
    reduction_factor: int = Field(3, ge=2)  # asha: keep the best 1/reduction_factor at each rung


class ResourcesConfig(Section):
    cpu: float = Field(1.0, gt=0)
    gpu: float = Field(0.0, ge=0)


class TuneConfig(Section):
    """A hyperparameter search over the rest of the config (any `--set` path is a parameter)."""

    type_labels: ClassVar[dict[str, str]] = {"parameters": "parameter type"}
    engine: Literal["optuna", "ray"] = "optuna"
    metric: str = "validation.loss"  # a history column, as trainer.early_stopping.metric: validation.loss, validation.accuracy, train.loss
    goal: Literal["minimize", "maximize"] | None = None  # default: minimize losses and errors, maximize the rest
    trials: int = Field(30, ge=1)
    time_budget_s: float | None = Field(None, gt=0)  # no new trial starts after this (per invocation)
    sampler: SamplerConfig = SamplerConfig()
    pruner: PrunerConfig = PrunerConfig()
    parallel: int = Field(1, ge=1, le=256)  # optuna: trials at once in worker processes; ray: concurrent trials
    resources_per_trial: ResourcesConfig = ResourcesConfig()  # ray: CPUs / GPUs each trial reserves
    address: str | None = None  # ray: an existing cluster ("auto", "ray://host:10001"); default: a local one
    start_from_base: bool = True  # the first trial runs the base config's own values (those inside the space)
    parameters: dict[str, ParamSpec] = Field(min_length=1)  # type: ignore[valid-type]

    @field_validator("metric")
    @classmethod
    def _metric(cls, value: str) -> str:
        if not METRIC.match(value):
            raise ValueError(f"'{value}' is not a metric; use validation.<name> or train.<name>, e.g. validation.loss, "
                             "validation.accuracy")
        return value

    @field_validator("parameters")
    @classmethod
    def _paths(cls, value: dict[str, Any]) -> dict[str, Any]:
        for path in value:
            if not PATH.match(path):
                raise ValueError(f"'{path}' is not a config path; write section.key as for --set, e.g. trainer.learning_rate")
            if path.split(".")[0] in ("tune", "task"):
                raise ValueError(f"'{path}' cannot be searched (the search itself and the task are fixed)")
        return value

    @property
    def direction(self) -> str:
        if self.goal is not None:
            return self.goal
        return "minimize" if self.metric.endswith(LOWER_IS_BETTER) else "maximize"

    @property
    def startup_trials(self) -> int:
        """Random trials before TPE / GP models the results: as set, else a sixth of the trials (2 to 10;
        20 trials → 3, chosen on benchmarks/tune.py: docs/tuning.md)."""
        if self.sampler.startup_trials is not None:
            return self.sampler.startup_trials
        return min(10, max(2, self.trials // 6))

    @property
    def key(self) -> str:
        """The history column of the metric (validation.loss → validation_loss)."""
        return self.metric.replace(".", "_", 1)
