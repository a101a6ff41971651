"""Category features: a vocabulary of values → one-hot or embedding inputs; softmax outputs."""

from __future__ import annotations

from typing import Any, Literal

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F
from pydantic import Field

from kiln.features import FEATURES
from kiln.features._classes import add_counts, check_classes, decode_classes, encode_labels, label_strings
from kiln.features.base import Feature, FeatureConfig

UNSEEN = "<unseen>"


class CategoryConfig(FeatureConfig):
    type: Literal["category"]
    max_categories: int = Field(1000, ge=1, le=10_000_000)  # rarer values map to <unseen> (inputs)
    embedding_dim: int | None = Field(None, ge=1, le=65_536)  # None: one-hot up to 32 categories, else a 16-wide embedding


@FEATURES.register("category")
class CategoryFeature(Feature):
    type = "category"
    Config = CategoryConfig
    can_be_output = True

    def __init__(self, config: CategoryConfig, preprocessing: Any = None) -> None:
        super().__init__(config, preprocessing)
        self.vocab: list[str] = []

    @property
    def output_dim(self) -> int:  # type: ignore[override]
        return len(self.vocab)

    def _filled(self, series: pd.Series) -> pd.Series:
        fill = getattr(getattr(self.preprocessing, "missing", None), "category", "<unk>")
        return label_strings(series).fillna(fill)

    def fit(self, series: pd.Series) -> None:
        counts = self._filled(series).value_counts()
        kept = sorted(counts.index[: self.config.max_categories])
        self.vocab = kept
        self.fitted = True

    def fit_partial(self, series: pd.Series) -> None:
        self._counts = add_counts(getattr(self, "_counts", {}), self._filled(series))

    def fit_finish(self) -> None:
        ranked = sorted(getattr(self, "_counts", {}).items(), key=lambda kv: -kv[1])  # stable: ties keep first-seen order
        self.vocab = sorted(value for value, _ in ranked[: self.config.max_categories])
        self._counts = {}
        self.fitted = True

    def transform(self, series: pd.Series) -> torch.Tensor:
        index = {c: i + 1 for i, c in enumerate(self.vocab)}  # 0 = unseen
        # a dict lookup per value: the same as Series.map(index).fillna(0), without pandas' per-call overhead
        return torch.tensor([index.get(v, 0) for v in self._filled(series).tolist()], dtype=torch.int64)

    def state(self) -> dict[str, Any]:
        return {"vocab": self.vocab}

    def load_state(self, state: dict[str, Any]) -> None:
        self.vocab = list(state["vocab"])
        self.fitted = True

    def describe(self) -> dict[str, Any]:
        return {"cardinality": len(self.vocab) + 1, "embedding_dim": self.config.embedding_dim}

    # -- output ------------------------------------------------------------------------------
    def encode_target(self, series: pd.Series) -> torch.Tensor:
        check_classes(self.vocab, self.name)
        return encode_labels(series, self.vocab, self.name)

    def loss(self, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        return F.cross_entropy(logits, target)

    def probabilities(self, logits: torch.Tensor) -> np.ndarray:
        return torch.softmax(logits.detach().float(), dim=-1).cpu().numpy().astype("float64")

    def decode(self, logits: torch.Tensor) -> dict[str, np.ndarray]:
        return decode_classes(self.name, self.probabilities(logits), self.vocab)

    def metrics(self, logits: torch.Tensor, target: torch.Tensor) -> dict[str, Any]:
        from kiln.evaluate.metrics import classification_metrics  # scikit-learn loads only when metrics are computed

        loss = float(self.loss(logits, target))
        return classification_metrics(target.cpu().numpy(), self.probabilities(logits), self.vocab, loss=loss)

    def running_metric(self, logits: torch.Tensor, target: torch.Tensor) -> tuple[str, torch.Tensor]:
        return "accuracy", (logits.argmax(-1) == target).sum()
