"""The language-modelling config (`task: language_modeling`): a plain text file → a GPT trained on
next-token prediction, with kiln's shared trainer options (in iterations)."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field

from kiln.config import Section, expand_path, validate
from kiln.features.tokenizers import TokenizerConfig
from kiln.models.gpt import GPTConfig
from kiln.training.config import IterationTrainerConfig
from kiln.training.distributed import BackendConfig

TASK = "language_modeling"


class LMSplitConfig(Section):
    validation: float = Field(0.1, gt=0.0, lt=1.0)  # the LAST fraction of the text (by characters) is validation


class LMDataConfig(Section):
    train: str | None = None  # a plain UTF-8 text file
    validation: str | None = None  # a separate validation text file; when set, `split` is not used
    split: LMSplitConfig = LMSplitConfig()
    encoding: str = "utf-8"


class LMConfig(Section):
    task: Literal["language_modeling"]
    data: LMDataConfig = LMDataConfig()
    tokenizer: TokenizerConfig = TokenizerConfig()
    model: GPTConfig = GPTConfig()
    trainer: IterationTrainerConfig = IterationTrainerConfig()
    backend: BackendConfig = BackendConfig()  # local | torchrun | ray data parallelism (docs/scale-out.md)


def load_lm_config(source: Any) -> LMConfig:
    """Build a validated LMConfig from a path, a dict or an LMConfig; errors are one KilnError line."""
    if isinstance(source, LMConfig):
        return source
    config = validate(LMConfig, source)
    for field in ("train", "validation"):
        value = getattr(config.data, field)
        if value:
            setattr(config.data, field, expand_path(value, f"data.{field}"))
    return config
