"""The trainer options every task shares (supervised epochs, language-model iterations, pre-training).

A task's trainer section subclasses `TrainerConfig` with its unit of work (`epochs`, or
`iterations` + `eval_interval`) and its own defaults; everything else means the same everywhere."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, field_validator, model_validator

from kiln.config import DEVICE, Section


class ScheduleConfig(Section):
    """Learning-rate schedule. `none`, `cosine` and `linear_warmup` change the rate every optimizer
    step (after `warmup`); `step` and `plateau` every round (an epoch, or an evaluation interval)."""

    type: Literal["none", "step", "cosine", "linear_warmup", "plateau"] = "none"
    warmup: float | None = Field(None, ge=0.0)  # fraction of all steps (< 1) or a step count (>= 1); linear_warmup: 0.1, else 0
    min_lr: float = Field(0.0, ge=0.0)  # cosine / linear_warmup end here; plateau floor
    step_size: int = Field(10, ge=1)  # step: rounds between decays
    gamma: float = Field(0.1, gt=0.0, le=1.0)  # step: decay factor
    factor: float = Field(0.5, gt=0.0, lt=1.0)  # plateau: decay factor
    patience: int = Field(2, ge=0)  # plateau: rounds without improvement

    @model_validator(mode="after")
    def _warmup_applies(self) -> "ScheduleConfig":
        if self.warmup and self.type in ("step", "plateau"):
            raise ValueError(f"warmup is not used by the '{self.type}' schedule; use cosine, linear_warmup or none")
        return self

    def warmup_steps(self, total: int) -> int:
        warmup = (0.1 if self.type == "linear_warmup" else 0.0) if self.warmup is None else self.warmup
        return int(warmup if warmup >= 1 else warmup * total)


class EarlyStoppingConfig(Section):
    metric: str = "validation.loss"  # a history column with '.' for the first '_': validation.loss, validation.accuracy, train.loss
    patience: int = Field(5, ge=1)  # rounds without improvement
    min_delta: float = Field(0.0, ge=0.0)
    mode: Literal["auto", "min", "max"] = "auto"


class TrainerConfig(Section):
    """Options of kiln's one training loop (kiln.training.Trainer)."""

    batch_size: int = Field(32, ge=1)  # rows (supervised) or sequences (language models) per micro-batch
    eval_batch_size: int = Field(1024, ge=1)
    optimizer: Literal["sgd", "adam", "adamw", "rmsprop"] = "adam"
    learning_rate: float = Field(1e-3, gt=0)
    momentum: float = Field(0.9, ge=0)  # sgd only
    betas: tuple[float, float] | None = None  # adam / adamw; None: torch's (0.9, 0.999)
    weight_decay: float = Field(0.0, ge=0)  # on weight matrices and embeddings only (decoupled for adamw)
    l1: float = Field(0.0, ge=0)  # L1 penalty on weight matrices, added to the loss
    l2: float = Field(0.0, ge=0)  # L2 penalty on every parameter, applied by the optimizer
    lr_schedule: ScheduleConfig = ScheduleConfig()
    grad_clip: float | None = Field(None, ge=0)  # max global gradient norm; null or 0 disables
    gradient_accumulation: int = Field(1, ge=1)  # micro-batches per optimizer step
    precision: Literal["fp32", "bf16"] = "fp32"  # bf16: torch.autocast on the training device
    compile: bool = False  # torch.compile the network for the training steps
    early_stopping: EarlyStoppingConfig | None = None
    restore_best: bool = True  # end with the weights of the best round (by early_stopping.metric, else validation loss)
    convergence_tol: float | None = Field(None, gt=0)  # stop when the training loss changes less than this between rounds
    freeze: list[Literal["embeddings", "encoder"]] = []  # input encoders' token embeddings, or whole encoders
    layer_lr_decay: float | None = Field(None, gt=0.0, le=1.0)  # encoder layer k from the top learns at lr * decay**k
    seed: int = Field(42, ge=0, lt=2**63)
    checkpoint_interval_s: float = Field(1.0, ge=0.0, le=86_400.0)  # least seconds between checkpoints (0: every round); the last round always writes one
    threads: int | None = Field(None, ge=1, le=1024)  # torch intra-op threads; default $KILN_THREADS or min(4, cores)
    device: str = "auto"

    @field_validator("device")
    @classmethod
    def _device(cls, value: str) -> str:
        if not DEVICE.match(value):
            raise ValueError(f"'{value}' is not a device; valid: auto, cpu, cuda, cuda:N, mps")
        return value

    @field_validator("betas")
    @classmethod
    def _betas(cls, value: tuple[float, float] | None) -> tuple[float, float] | None:
        if value is not None and not all(0.0 <= b < 1.0 for b in value):
            raise ValueError(f"betas must each be in [0, 1), got {list(value)}")
        return value

    @model_validator(mode="after")
    def _lr_floor(self) -> "TrainerConfig":
        if self.lr_schedule.min_lr > self.learning_rate:
            raise ValueError(f"lr_schedule.min_lr ({self.lr_schedule.min_lr}) must not exceed learning_rate ({self.learning_rate})")
        return self


class EpochTrainerConfig(TrainerConfig):
    """Training in epochs over a fixed table (supervised tasks)."""

    epochs: int = Field(10, ge=1, le=1_000_000)
    batch_size: int | Literal["full"] = 32  # type: ignore[assignment]  # "full": one batch of every row

    @field_validator("batch_size")
    @classmethod
    def _positive(cls, value: int | str) -> int | str:
        if isinstance(value, int) and value < 1:
            raise ValueError("batch_size must be >= 1, or 'full'")
        return value

    @field_validator("epochs", mode="before")
    @classmethod
    def _not_bool(cls, value: object) -> object:
        if isinstance(value, bool):
            raise ValueError("epochs must be a whole number, not true/false")
        return value


class IterationTrainerConfig(TrainerConfig):
    """Training in optimizer steps over sampled examples (language modelling, pre-training), with an
    evaluation and a checkpoint every `eval_interval` steps."""

    iterations: int = Field(2000, ge=1, le=100_000_000)  # optimizer steps
    eval_interval: int = Field(250, ge=1)  # steps between validation + checkpoint (one round)
    eval_iters: int = Field(20, ge=1)  # fixed batches averaged for each loss estimate
    batch_size: int = Field(12, ge=1)
    optimizer: Literal["sgd", "adam", "adamw", "rmsprop"] = "adamw"
    betas: tuple[float, float] | None = (0.9, 0.99)
    weight_decay: float = Field(0.1, ge=0)
    grad_clip: float | None = Field(1.0, ge=0)
    lr_schedule: ScheduleConfig = ScheduleConfig(type="cosine", warmup=100, min_lr=1e-4)
    restore_best: bool = False  # language models keep their last weights unless early stopping is on
    seed: int = Field(1337, ge=0, lt=2**63)
