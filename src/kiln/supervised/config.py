"""The supervised task's config: data, preprocessing, input/output features, model and trainer sections."""

from __future__ import annotations

from typing import Annotated, Any, ClassVar, Literal, Union

from pydantic import Field, field_validator, model_validator

from kiln.config import Section, expand_path, validate
from kiln.features import FEATURES
from kiln.models import MODELS
from kiln.models.base import ngram_refusal
from kiln.training.config import EpochTrainerConfig
from kiln.training.distributed import BackendConfig

TASK = "supervised"


class SplitConfig(Section):
    validation: float = Field(0.1, ge=0.0, lt=1.0)
    test: float = Field(0.2, ge=0.0, lt=1.0)
    seed: int = Field(42, ge=0, lt=2**32)
    stratify: bool = True
    key: str | None = None  # data.streaming: a column whose stable hash assigns each row its split (default: the row number)
    column: str | None = None  # a column of train/validation/test values gives the split (fractions then only carve a missing validation split)
    group: str | None = None  # rows sharing this column's value stay on one side of every split and fold (e.g. speaker)

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
    shuffle: bool = True  # reshuffle the training rows every epoch (seeded; streaming: within shuffle_buffer rows)
    batch_by_length: bool = False  # text: each batch from rows of similar token count (less padding computed), batches shuffled
    streaming: bool = False  # read Parquet/CSV in chunks, never the whole table in memory (docs/scale-out.md)
    stream_above_mb: float | None = Field(1024.0, gt=0)  # a train file (or Parquet directory) larger than this streams on its own; null: never
    chunk_rows: int = Field(65_536, ge=1)  # streaming: rows per read
    shuffle_buffer: int = Field(100_000, ge=1)  # streaming: rows mixed by the bounded shuffle buffer

    @model_validator(mode="after")
    def _streamable(self) -> "DataConfig":
        if self.streaming and self.sample is not None:
            raise ValueError("data.sample is not supported with data.streaming; filter the file instead")
        if self.streaming and self.batch_by_length:
            raise ValueError("data.batch_by_length is not supported with data.streaming")
        if self.streaming and self.train and self.train.startswith("sklearn:"):
            raise ValueError("data.streaming reads Parquet or CSV files, not built-in sklearn: datasets")
        return self


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


def _union(registry: Any, attr: str = "Config") -> Any:
    classes = tuple(getattr(registry.get(name), attr) for name in registry.names())
    return Annotated[Union[classes], Field(discriminator="type")]  # noqa: UP007


FeatureSpec = _union(FEATURES)
ModelSpec = _union(MODELS)
OUTPUT_TYPES = sorted(n for n in FEATURES.names() if FEATURES.get(n).can_be_output)


class SupervisedConfig(Section):
    """A supervised run: tables (and text, images) in, one or more predicted columns out."""

    type_labels: ClassVar[dict[str, str]] = {"input_features": "feature type", "output_features": "feature type",
                                              "model": "model type"}
    task: Literal["supervised"] = "supervised"
    data: DataConfig = DataConfig()
    preprocessing: PreprocessingConfig = PreprocessingConfig()
    input_features: list[FeatureSpec] = Field(min_length=1)  # type: ignore[valid-type]
    output_features: list[FeatureSpec] = Field(min_length=1)  # type: ignore[valid-type]
    model: ModelSpec = Field(default_factory=lambda: MODELS.get("mlp").Config(type="mlp"))  # type: ignore[valid-type]
    trainer: EpochTrainerConfig = EpochTrainerConfig()
    backend: BackendConfig = BackendConfig()  # local | torchrun | ray data parallelism (docs/scale-out.md)

    @model_validator(mode="after")
    def _features(self) -> "SupervisedConfig":
        for i, feature in enumerate(self.output_features):
            if feature.type not in OUTPUT_TYPES:
                raise ValueError(f"output_features[{i}] '{feature.name}': type {feature.type} cannot be an output; valid: {', '.join(OUTPUT_TYPES)}")
        names = [f.name for f in [*self.input_features, *self.output_features]]
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise ValueError(f"feature names must be unique; repeated: {dupes}")
        targets = {f.name for f in self.output_features}
        for i, feature in enumerate(self.output_features):
            if feature.column not in (None, feature.name):
                raise ValueError(f"output_features[{i}] '{feature.name}': only input features take 'column' "
                                 f"(an output reads the column named '{feature.name}')")
        for i, feature in enumerate(self.input_features):
            if feature.column in targets:
                raise ValueError(f"input_features[{i}] '{feature.name}': column '{feature.column}' is the output "
                                 f"feature's; an input cannot read the target")
        for i, feature in enumerate(self.input_features):
            if getattr(feature, "encoder", None) == "ngram" and ngram_refusal(self.model.type):
                raise ValueError(f"input_features[{i}] '{feature.name}': {ngram_refusal(self.model.type)}")
        MODELS.get(self.model.type)().configure(self)  # e.g. hf: text inputs use the checkpoint's tokenizer
        return self


def load_supervised_config(source: Any) -> SupervisedConfig:
    """A validated SupervisedConfig from a path, dict or config; errors are one KilnError line."""
    if isinstance(source, SupervisedConfig):
        return source
    config = validate(SupervisedConfig, source)
    for field in ("train", "validation", "test"):
        value = getattr(config.data, field)
        if value and not value.startswith("sklearn:"):
            setattr(config.data, field, expand_path(value, f"data.{field}"))
    return config
