"""The feature contract: clean → fit on the training split → transform to tensors, with JSON state."""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any, ClassVar

import numpy as np
import pandas as pd
import torch
from pydantic import Field

from kiln.config.section import Section


class FeatureConfig(Section):
    """Fields every feature has; each feature type adds its own and a `type` literal."""

    name: str = Field(min_length=1)
    column: str | None = Field(None, min_length=1)  # the data column read (default: `name`); features may share one

    @property
    def source_column(self) -> str:
        """The data column this feature reads: `column`, else its name."""
        return self.column or self.name


class Feature:
    """Base class: turns one column into a tensor, and (for outputs) logits back into predictions."""

    type: ClassVar[str]
    Config: ClassVar[type[FeatureConfig]]
    can_be_output: ClassVar[bool] = False

    @classmethod
    def variant(cls, config: FeatureConfig) -> "type[Feature]":
        """The class that implements this config (text: NgramTextFeature for `encoder: ngram`)."""
        return cls

    def __init__(self, config: FeatureConfig, preprocessing: Any = None) -> None:
        self.config = config
        self.preprocessing = preprocessing
        self.fitted = False

    @property
    def name(self) -> str:
        return self.config.name

    @property
    def column(self) -> str:
        """The source column this feature reads: `column:` in its config, else its name."""
        return self.config.source_column

    # -- input side ---------------------------------------------------------------------------
    def clean(self, series: pd.Series) -> tuple[pd.Series, dict[str, int]]:
        """Coerce raw values; return the cleaned series and counts of what was changed."""
        return series, {}

    def prefetch(self, train: pd.Series, later: Sequence[pd.Series]) -> None:
        """Before `fit`: the training split and the splits to be transformed after it, for a feature that can
        start on them meanwhile (the n-gram bag hashes some in a second process)."""

    def fit(self, series: pd.Series) -> None:
        """Learn state (scalers, vocabularies, label maps) from the training split."""
        self.fitted = True

    def fit_partial(self, series: pd.Series) -> None:
        """Streaming fit, one chunk of the training split at a time (data.streaming); `fit_finish`
        ends it. This default keeps the chunks and fits once at the end; features whose statistics
        merge (numeric, category, binary, word/char text) override it and keep only those."""
        self._chunks = [*getattr(self, "_chunks", []), series]

    def fit_finish(self) -> None:
        chunks = getattr(self, "_chunks", [])
        self.fit(pd.concat(chunks, ignore_index=True) if chunks else pd.Series([], dtype=object))
        self._chunks = []

    def transform(self, series: pd.Series) -> torch.Tensor:
        raise TypeError(f"{self.type} feature cannot transform")  # pragma: no cover - abstract

    def state(self) -> dict[str, Any]:
        """JSON-serialisable state learnt by `fit`."""
        return {}

    def load_state(self, state: dict[str, Any]) -> None:
        self.fitted = True

    def describe(self) -> dict[str, Any]:
        """What a model needs to build this feature's encoder (sizes, shapes)."""
        return {}

    # -- output side --------------------------------------------------------------------------
    output_dim: int = 0

    def encode_target(self, series: pd.Series) -> torch.Tensor:
        raise TypeError(f"{self.type} feature cannot be an output")

    def loss(self, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        raise TypeError(f"{self.type} feature cannot be an output")

    def decode(self, logits: torch.Tensor) -> dict[str, np.ndarray]:
        """Turn logits into prediction columns (`<name>_prediction`, `<name>_probability_<c>`)."""
        raise TypeError(f"{self.type} feature cannot be an output")

    def metrics(self, logits: torch.Tensor, target: torch.Tensor) -> dict[str, Any]:
        raise TypeError(f"{self.type} feature cannot be an output")

    def running_metric(self, logits: torch.Tensor, target: torch.Tensor) -> tuple[str, torch.Tensor]:
        """A cheap per-batch sum (a 0-d tensor, no host sync), e.g. correct predictions."""
        raise TypeError(f"{self.type} feature cannot be an output")


def is_missing(series: pd.Series) -> pd.Series:
    """True where a value is missing: NaN/None, or a blank string."""
    missing = series.isna()
    if series.dtype == object:  # only strings can be blank: arrays (image pixels) are never stringified
        missing |= series.map(lambda v: isinstance(v, str) and not v.strip()).astype(bool)
    elif pd.api.types.is_string_dtype(series):
        missing |= series.str.strip().eq("").fillna(False).astype(bool)
    return missing


_DIGIT = re.compile(r"\d")


def text_values(series: pd.Series, preprocessing: Any, normalize_digits: bool) -> list[str]:
    """A text column as strings: missing cells take `preprocessing.missing.text`; digits map to 0 when asked."""
    fill = getattr(getattr(preprocessing, "missing", None), "text", "")
    texts = series.fillna(fill).astype(str)
    if normalize_digits:
        texts = texts.str.replace(_DIGIT, "0", regex=True)
    return texts.tolist()
