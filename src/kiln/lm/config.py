"""The language-modelling config (`task: language_modeling`): a separate pydantic schema, LMConfig,
validated with the same one-line error messages as the tabular RunConfig."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from kiln.features.tokenizers import TOKENIZERS

TASK = "language_modeling"
TokenizerKind = Literal[tuple(TOKENIZERS.names())]  # type: ignore[valid-type]  # char, word, bpe, wordpiece, ...


class Section(BaseModel):
    model_config = ConfigDict(extra="forbid")


class LMSplitConfig(Section):
    validation: float = Field(0.1, gt=0.0, lt=1.0)  # the LAST fraction of the text (by characters) is validation


class LMDataConfig(Section):
    train: str | None = None  # a plain UTF-8 text file
    validation: str | None = None  # a separate validation text file; when set, `split` is not used
    split: LMSplitConfig = LMSplitConfig()
    encoding: str = "utf-8"


class LMTokenizerConfig(Section):
    type: TokenizerKind = "char"  # type: ignore[valid-type]
    vocab_size: int | None = Field(None, ge=3)  # None: the tokenizer's default (char/word keep every token up to 10000)
    lowercase: bool = False  # language models keep case by default


class GPTConfig(Section):
    type: Literal["gpt"] = "gpt"
    layers: int = Field(4, ge=1)
    heads: int = Field(4, ge=1)
    d_model: int = Field(128, ge=1)
    block_size: int = Field(64, ge=2)  # context length in tokens
    dropout: float = Field(0.0, ge=0.0, lt=1.0)
    bias: bool = True  # biases in the linear layers and LayerNorms

    @model_validator(mode="after")
    def _heads_divide(self) -> "GPTConfig":
        if self.d_model % self.heads:
            raise ValueError(f"d_model ({self.d_model}) must be divisible by heads ({self.heads})")
        return self


class LMTrainerConfig(Section):
    iterations: int = Field(2000, ge=1)  # optimizer steps
    batch_size: int = Field(12, ge=1)  # sequences per micro-batch; one step sees batch_size * gradient_accumulation
    learning_rate: float = Field(1e-3, gt=0)
    warmup: int = Field(100, ge=0)  # linear warm-up steps, then cosine decay to min_lr at the last iteration
    min_lr: float = Field(1e-4, ge=0)
    weight_decay: float = Field(0.1, ge=0)  # AdamW decay on weight matrices and embeddings only
    betas: tuple[float, float] = (0.9, 0.99)
    grad_clip: float | None = Field(1.0, ge=0)  # max global gradient norm; null or 0 disables
    gradient_accumulation: int = Field(1, ge=1)
    precision: Literal["fp32", "bf16"] = "fp32"  # bf16: torch.autocast on the training device
    compile: bool = False  # torch.compile the network for training
    eval_interval: int = Field(250, ge=1)  # iterations between validation + checkpoint
    eval_iters: int = Field(20, ge=1)  # fixed batches averaged for each loss estimate
    seed: int = 1337
    threads: int | None = None  # torch intra-op threads; default $KILN_THREADS or min(4, cores)
    device: str = "auto"

    @field_validator("device")
    @classmethod
    def _device(cls, value: str) -> str:
        from kiln.config.loader import _DEVICE

        if not _DEVICE.match(value):
            raise ValueError(f"'{value}' is not a device; valid: auto, cpu, cuda, cuda:N, mps")
        return value

    @model_validator(mode="after")
    def _lr_floor(self) -> "LMTrainerConfig":
        if self.min_lr > self.learning_rate:
            raise ValueError(f"min_lr ({self.min_lr}) must not exceed learning_rate ({self.learning_rate})")
        return self


class LMConfig(Section):
    task: Literal["language_modeling"]
    data: LMDataConfig = LMDataConfig()
    tokenizer: LMTokenizerConfig = LMTokenizerConfig()
    model: GPTConfig = GPTConfig()
    trainer: LMTrainerConfig = LMTrainerConfig()


def load_lm_config(source: Any) -> LMConfig:
    """Build a validated LMConfig from a path, a dict or an LMConfig; errors are one KilnError line."""
    from kiln.config.loader import expand_path, validate

    if isinstance(source, LMConfig):
        return source
    config = validate(LMConfig, source)
    for field in ("train", "validation"):
        value = getattr(config.data, field)
        if value:
            setattr(config.data, field, expand_path(value, f"data.{field}"))
    return config
