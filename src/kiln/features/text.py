"""Text features: word- or char-level vocabularies learnt on the training split, post-padded ids."""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Callable
from typing import Any, Literal

import numpy as np
import pandas as pd
import torch

from kiln.features import FEATURES
from kiln.features.base import Feature, FeatureConfig
from kiln.registry import Registry

PAD, UNK = "<pad>", "<unk>"
TOKENIZERS: Registry[Callable[[str], list[str]]] = Registry("tokenizer")
_WORD = re.compile(r"[\w']+|[^\w\s]")


@TOKENIZERS.register("word")
def word_tokens(text: str) -> list[str]:
    return _WORD.findall(text)


@TOKENIZERS.register("char")
def char_tokens(text: str) -> list[str]:
    return list(text)


class TextConfig(FeatureConfig):
    type: Literal["text"]
    tokenizer: Literal["word", "char"] = "word"
    vocab_size: int = 10000  # including <pad> and <unk>
    max_length: int = 64
    min_frequency: int = 1
    lowercase: bool = True


@FEATURES.register("text")
class TextFeature(Feature):
    type = "text"
    Config = TextConfig

    def __init__(self, config: TextConfig, preprocessing: Any = None) -> None:
        super().__init__(config, preprocessing)
        self.vocab: list[str] = [PAD, UNK]

    def _tokens(self, series: pd.Series) -> list[list[str]]:
        fill = getattr(getattr(self.preprocessing, "missing", None), "text", "")
        texts = series.fillna(fill).astype(str)
        if self.config.lowercase:
            texts = texts.str.lower()
        tokenize = TOKENIZERS.get(self.config.tokenizer)
        return [tokenize(t) for t in texts]

    def fit(self, series: pd.Series) -> None:
        counts = Counter(token for tokens in self._tokens(series) for token in tokens)
        common = [t for t, n in counts.most_common(max(0, self.config.vocab_size - 2)) if n >= self.config.min_frequency]
        self.vocab = [PAD, UNK, *common]
        self.fitted = True

    def transform(self, series: pd.Series) -> torch.Tensor:
        index = {t: i for i, t in enumerate(self.vocab)}
        length = self.config.max_length
        ids = np.zeros((len(series), length), dtype="int64")
        for row, tokens in enumerate(self._tokens(series)):
            row_ids = [index.get(t, 1) for t in tokens[:length]]
            ids[row, : len(row_ids)] = row_ids
        return torch.from_numpy(ids)

    def state(self) -> dict[str, Any]:
        return {"vocab": self.vocab}

    def load_state(self, state: dict[str, Any]) -> None:
        self.vocab = list(state["vocab"])
        self.fitted = True

    def describe(self) -> dict[str, Any]:
        return {"vocab_size": len(self.vocab), "max_length": self.config.max_length}
