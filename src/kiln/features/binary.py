"""Binary features: two-valued columns (0/1, yes/no, male/female) as 0/1; sigmoid output."""

from __future__ import annotations

from typing import Any, Literal

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F

from kiln.errors import KilnError
from kiln.features import FEATURES
from kiln.features._classes import add_counts, check_classes, decode_classes, encode_labels, label_strings
from kiln.features.base import Feature, FeatureConfig

_POSITIVE_WORDS = ("1", "true", "yes", "y", "t", "positive", "pos", "spam")


class BinaryConfig(FeatureConfig):
    type: Literal["binary"]
    positive: str | None = None  # which raw value is the positive class; inferred when omitted


@FEATURES.register("binary")
class BinaryFeature(Feature):
    type = "binary"
    Config = BinaryConfig
    can_be_output = True
    output_dim = 1

    def __init__(self, config: BinaryConfig, preprocessing: Any = None) -> None:
        super().__init__(config, preprocessing)
        self.classes: list[str] = []
        self.fill = 0.0

    def fit(self, series: pd.Series) -> None:
        self._fit_counts(label_strings(series).dropna().value_counts().to_dict())

    def fit_partial(self, series: pd.Series) -> None:
        self._counts = add_counts(getattr(self, "_counts", {}), label_strings(series).dropna())

    def fit_finish(self) -> None:
        self._fit_counts(getattr(self, "_counts", {}))
        self._counts = {}

    def _fit_counts(self, counts: dict[str, int]) -> None:
        distinct = sorted(counts)
        if len(distinct) > 2:
            raise KilnError(
                f"binary feature '{self.name}' has {len(distinct)} distinct values {distinct[:5]}; use type: category"
            )
        positive = self.config.positive
        if positive is None:
            words = [v for v in distinct if v.lower() in _POSITIVE_WORDS]
            positive = words[0] if words else (distinct[-1] if distinct else "1")
        elif positive not in distinct:
            raise KilnError(f"binary feature '{self.name}': positive value '{positive}' not in data values {distinct}")
        negative = [v for v in distinct if v != positive]
        self.classes = [negative[0] if negative else f"not {positive}", positive]
        total = sum(counts.values())
        self.fill = float(counts.get(positive, 0) / total >= 0.5) if total else 0.0
        self.fitted = True

    def _as_float(self, series: pd.Series) -> np.ndarray:
        labels = label_strings(series)
        out = np.array(labels == self.classes[1], dtype="float32")
        out[labels.isna().to_numpy()] = self.fill
        return out

    def transform(self, series: pd.Series) -> torch.Tensor:
        return torch.from_numpy(self._as_float(series)).unsqueeze(1)

    def state(self) -> dict[str, Any]:
        return {"classes": self.classes, "fill": self.fill}

    def load_state(self, state: dict[str, Any]) -> None:
        self.classes, self.fill = list(state["classes"]), float(state["fill"])
        self.fitted = True

    def describe(self) -> dict[str, Any]:
        return {"dim": 1}

    # -- output ------------------------------------------------------------------------------
    def encode_target(self, series: pd.Series) -> torch.Tensor:
        check_classes(self.classes, self.name)
        return encode_labels(series, self.classes, self.name).float()

    def loss(self, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        return F.binary_cross_entropy_with_logits(logits.squeeze(-1), target)

    def probabilities(self, logits: torch.Tensor) -> np.ndarray:
        p = torch.sigmoid(logits.detach().float().squeeze(-1)).cpu().numpy().astype("float64")
        return np.stack([1.0 - p, p], axis=1)

    def decode(self, logits: torch.Tensor) -> dict[str, np.ndarray]:
        return decode_classes(self.name, self.probabilities(logits), self.classes)

    def metrics(self, logits: torch.Tensor, target: torch.Tensor) -> dict[str, Any]:
        from kiln.evaluate.metrics import classification_metrics  # scikit-learn loads only when metrics are computed

        loss = float(self.loss(logits, target))
        return classification_metrics(target.long().cpu().numpy(), self.probabilities(logits), self.classes, loss=loss)

    def running_metric(self, logits: torch.Tensor, target: torch.Tensor) -> tuple[str, torch.Tensor]:
        return "accuracy", ((logits.squeeze(-1) > 0) == target.bool()).sum()
