"""Text features: a tokenizer fitted on the training split, post-padded id sequences."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field, model_validator

import pandas as pd
import torch

from kiln.features import FEATURES
from kiln.features.base import Feature, FeatureConfig, text_values
from kiln.features.ngrams import NgramConfig, NgramTextFeature
from kiln.features.tokenizers import Tokenizer, build_tokenizer, tokenizer_from_state



class TextConfig(FeatureConfig):
    type: Literal["text"]
    tokenizer: Literal["word", "char", "bpe", "wordpiece", "pretrained"] = "word"
    vocab_size: int = Field(10000, ge=3, le=1_000_000)  # including <pad> and <unk>
    max_length: int = Field(64, ge=1, le=100_000)
    min_frequency: int = Field(1, ge=1)
    lowercase: bool = True
    normalize_digits: bool = False  # map every digit to 0, so numbers of one shape (phone numbers, prices) share a token
    tokenizer_path: str | None = None  # tokenizer "pretrained": a Hugging Face checkpoint directory (model type hf sets it)
    encoder: Literal["sequence", "ngram"] = "sequence"  # sequence: token ids for the model's text encoder; ngram: a hashed n-gram bag
    ngram: NgramConfig | None = None  # encoder ngram: sizes, buckets, weighting (docs/text.md)

    @model_validator(mode="after")
    def _ngram_block(self) -> "TextConfig":
        if self.ngram is not None and self.encoder != "ngram":
            raise ValueError("an ngram block needs encoder: ngram")
        if self.encoder == "ngram" and self.tokenizer not in ("word", "char"):
            raise ValueError(f"encoder: ngram hashes word and character n-grams itself; remove tokenizer: {self.tokenizer}")
        return self


@FEATURES.register("text")
class TextFeature(Feature):
    type = "text"
    Config = TextConfig

    @classmethod
    def variant(cls, config: TextConfig) -> type[Feature]:
        return NgramTextFeature if config.encoder == "ngram" else cls

    def __init__(self, config: TextConfig, preprocessing: Any = None) -> None:
        super().__init__(config, preprocessing)
        pretrained = {"path": config.tokenizer_path, "max_length": config.max_length} if config.tokenizer == "pretrained" else {}
        self.tokenizer = build_tokenizer(
            config.tokenizer, vocab_size=config.vocab_size, lowercase=config.lowercase, min_frequency=config.min_frequency,
            **pretrained,
        )

    def _texts(self, series: pd.Series) -> list[str]:
        return text_values(series, self.preprocessing, self.config.normalize_digits)

    @property
    def vocab(self) -> list[str]:
        return self.tokenizer.vocab

    def fit(self, series: pd.Series) -> None:
        self.tokenizer.fit(self._texts(series))
        self.fitted = True

    def fit_partial(self, series: pd.Series) -> None:
        if type(self.tokenizer).fit is not Tokenizer.fit:  # subword tokenizers learn merges from all text
            return super().fit_partial(series)
        counts = self.tokenizer.count(self._texts(series))
        if hasattr(self, "_counts"):
            self._counts.update(counts)  # keeps first-seen order for ties, as one Counter over all text would
        else:
            self._counts = counts
        return None

    def fit_finish(self) -> None:
        if not hasattr(self, "_counts"):
            return super().fit_finish()
        self.tokenizer.fit_counts(self._counts)
        del self._counts
        self.fitted = True
        return None

    def transform(self, series: pd.Series) -> torch.Tensor:
        return torch.from_numpy(self.tokenizer.encode_padded(self._texts(series), self.config.max_length))

    def state(self) -> dict[str, Any]:
        return {"tokenizer": self.tokenizer.state()}

    def load_state(self, state: dict[str, Any]) -> None:
        self.tokenizer = tokenizer_from_state(state["tokenizer"])
        self.fitted = True

    def describe(self) -> dict[str, Any]:
        return {"vocab_size": self.tokenizer.vocab_size, "max_length": self.config.max_length, "pad_id": self.tokenizer.pad_id}
