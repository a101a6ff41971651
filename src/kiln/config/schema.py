"""The run config: pydantic models for each section (data, preprocessing, features, model, trainer)."""

from __future__ import annotations

from typing import Annotated, Any, Literal, Union

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from kiln.features import FEATURES
from kiln.models import MODELS


class Section(BaseModel):
    model_config = ConfigDict(extra="forbid")


class SplitConfig(Section):
    validation: float = Field(0.1, ge=0.0, lt=1.0)
    test: float = Field(0.2, ge=0.0, lt=1.0)
    seed: int = 42
    stratify: bool = True

    @model_validator(mode="after")
    def _fractions(self) -> "SplitConfig":
        if self.validation + self.test >= 1.0:
            raise ValueError(f"validation + test must be below 1 (got {self.validation} + {self.test})")
        return self


class DataConfig(Section):
    train: str | None = None  # a csv/tsv/jsonl/parquet path, or sklearn:<digits|iris|wine|breast_cancer|diabetes>
    validation: str | None = None
    test: str | None = None
    split: SplitConfig = SplitConfig()
    sample: float | None = Field(None, gt=0.0, le=1.0)  # keep this fraction of the training file (stratified, seeded)


class MissingConfig(Section):
    numeric: Literal["median", "mean", "zero"] = "median"
    category: str = "<unk>"
    text: str = ""


class OutlierConfig(Section):
    clip_quantiles: tuple[float, float] | None = None

    @field_validator("clip_quantiles")
    @classmethod
    def _ordered(cls, value: tuple[float, float] | None) -> tuple[float, float] | None:
        if value is not None and not 0.0 <= value[0] < value[1] <= 1.0:
            raise ValueError(f"need 0 <= low < high <= 1, got {list(value)}")
        return value


class PreprocessingConfig(Section):
    drop_duplicates: bool = True
    missing: MissingConfig = MissingConfig()
    outliers: OutlierConfig = OutlierConfig()


class ScheduleConfig(Section):
    type: Literal["none", "step", "cosine", "linear_warmup", "plateau"] = "none"
    step_size: int = Field(10, ge=1)  # step: epochs between decays
    gamma: float = 0.1  # step decay factor
    warmup: float = Field(0.1, ge=0.0)  # linear_warmup/cosine: fraction of all steps (<1) or a step count (>=1)
    factor: float = 0.5  # plateau: decay factor
    patience: int = 2  # plateau: epochs without improvement
    min_lr: float = 0.0


class EarlyStoppingConfig(Section):
    metric: str = "validation.loss"
    patience: int = Field(5, ge=1)
    min_delta: float = 0.0
    mode: Literal["auto", "min", "max"] = "auto"


class TrainerConfig(Section):
    epochs: int = Field(10, ge=1)
    batch_size: int | Literal["full"] = 32
    eval_batch_size: int = Field(1024, ge=1)
    optimizer: Literal["sgd", "adam", "adamw", "rmsprop"] = "adam"
    learning_rate: float = Field(1e-3, gt=0)
    momentum: float = Field(0.9, ge=0)  # sgd only
    lr_schedule: ScheduleConfig = ScheduleConfig()
    l1: float = Field(0.0, ge=0)
    l2: float = Field(0.0, ge=0)
    grad_clip: float | None = None
    early_stopping: EarlyStoppingConfig | None = None
    convergence_tol: float | None = None  # stop when the training loss changes less than this
    restore_best: bool = True  # keep the weights of the best validation epoch
    seed: int = 42
    threads: int | None = None  # torch intra-op threads; default $KILN_THREADS or min(4, cores)
    device: str = "auto"
    freeze: list[Literal["embeddings", "encoder"]] = []  # input encoders' token embeddings, or whole encoders
    layer_lr_decay: float | None = Field(None, gt=0.0, le=1.0)  # encoder layer k from the top learns at lr * decay**k

    @field_validator("batch_size")
    @classmethod
    def _positive(cls, value: int | str) -> int | str:
        if isinstance(value, int) and value < 1:
            raise ValueError("batch_size must be >= 1, or 'full'")
        return value


def _union(registry: Any, attr: str = "Config") -> Any:
    classes = tuple(getattr(registry.get(name), attr) for name in registry.names())
    return Annotated[Union[classes], Field(discriminator="type")]  # noqa: UP007


FeatureSpec = _union(FEATURES)
ModelSpec = _union(MODELS)
OUTPUT_TYPES = sorted(n for n in FEATURES.names() if FEATURES.get(n).can_be_output)


class RunConfig(Section):
    data: DataConfig = DataConfig()
    preprocessing: PreprocessingConfig = PreprocessingConfig()
    input_features: list[FeatureSpec] = Field(min_length=1)  # type: ignore[valid-type]
    output_features: list[FeatureSpec] = Field(min_length=1)  # type: ignore[valid-type]
    model: ModelSpec = Field(default_factory=lambda: MODELS.get("mlp").Config(type="mlp"))  # type: ignore[valid-type]
    trainer: TrainerConfig = TrainerConfig()

    @model_validator(mode="after")
    def _features(self) -> "RunConfig":
        for i, feature in enumerate(self.output_features):
            if feature.type not in OUTPUT_TYPES:
                raise ValueError(f"output_features[{i}] '{feature.name}': type {feature.type} cannot be an output; valid: {', '.join(OUTPUT_TYPES)}")
        names = [f.name for f in [*self.input_features, *self.output_features]]
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise ValueError(f"feature names must be unique; repeated: {dupes}")
        MODELS.get(self.model.type)().configure(self)  # e.g. hf: text inputs use the checkpoint's tokenizer
        return self
