"""The pre-training config (`task: pretraining`): unlabelled text → a Transformer encoder trained
with the masked-language-model objective, reusable by a classification config (`model.pretrained`)."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field, field_validator, model_validator

from kiln.config import Section, expand_path, validate
from kiln.features.tokenizers import TokenizerConfig
from kiln.models.transformer import TransformerEncoderConfig
from kiln.training.config import IterationTrainerConfig
from kiln.training.distributed import BackendConfig

TASK = "pretraining"


class PretrainDataConfig(Section):
    train: list[str] = Field(min_length=1)  # text sources: .txt (one example per non-empty line) or csv/tsv/jsonl/parquet
    text_column: str = "text"  # the column read from table files
    validation: float = Field(0.05, gt=0.0, lt=1.0)  # held-out fraction of the examples (shuffled)
    seed: int = Field(42, ge=0, lt=2**32)
    max_examples: int | None = Field(None, ge=2)  # cap on examples per source (None: all)

    @field_validator("train", mode="before")
    @classmethod
    def _listify(cls, value: Any) -> Any:
        return [value] if isinstance(value, str) else value


class PretrainTokenizerConfig(TokenizerConfig):
    type: str = "word"
    vocab_size: int | None = Field(10000, ge=3, le=1_000_000)
    lowercase: bool = True
    max_length: int = Field(64, ge=2, le=100_000)  # tokens per example; longer examples are cut


class ObjectiveConfig(Section):
    type: Literal["mlm"] = "mlm"
    mask_fraction: float = Field(0.15, gt=0.0, lt=1.0)  # share of real tokens chosen for prediction
    replace_with_mask: float = Field(0.8, ge=0.0, le=1.0)  # of the chosen: → <mask>; then half the rest random, half kept
    random_token: float = Field(0.1, ge=0.0, le=1.0)

    @model_validator(mode="after")
    def _shares(self) -> "ObjectiveConfig":
        if self.replace_with_mask + self.random_token > 1.0:
            raise ValueError("replace_with_mask + random_token must not exceed 1")
        return self


class PretrainTrainerConfig(IterationTrainerConfig):
    batch_size: int = Field(64, ge=1)
    weight_decay: float = Field(0.01, ge=0)
    eval_interval: int = Field(500, ge=1)
    seed: int = Field(42, ge=0, lt=2**63)


class PretrainConfig(Section):
    task: Literal["pretraining"]
    data: PretrainDataConfig
    tokenizer: PretrainTokenizerConfig = PretrainTokenizerConfig()
    model: TransformerEncoderConfig = TransformerEncoderConfig()
    objective: ObjectiveConfig = ObjectiveConfig()
    trainer: PretrainTrainerConfig = PretrainTrainerConfig()
    backend: BackendConfig = BackendConfig()  # local | torchrun | ray data parallelism (docs/scale-out.md)


def load_pretrain_config(source: Any) -> PretrainConfig:
    """A validated PretrainConfig from a path, dict or PretrainConfig; errors are one KilnError line."""
    if isinstance(source, PretrainConfig):
        return source
    config = validate(PretrainConfig, source)
    config.data.train = [expand_path(p, f"data.train[{i}]") for i, p in enumerate(config.data.train)]
    return config
