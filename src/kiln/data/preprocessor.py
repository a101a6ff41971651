"""The fitted preprocessing of a run: features fitted on the training split, applied identically later."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import pandas as pd
import torch

from kiln.data.cleaning import check_feature_columns, check_scalar_cells
from kiln.features import Feature, build_feature
from kiln.features._classes import check_classes, label_strings


@dataclass
class TensorData:
    """A split as tensors: inputs and targets keyed by feature name, indexable by row ids."""

    inputs: dict[str, torch.Tensor]
    targets: dict[str, torch.Tensor] = field(default_factory=dict)

    def __len__(self) -> int:
        return len(next(iter(self.inputs.values())))

    def take(self, index: torch.Tensor | slice) -> "TensorData":
        return TensorData({k: v[index] for k, v in self.inputs.items()}, {k: v[index] for k, v in self.targets.items()})

    @staticmethod
    def concat(parts: list["TensorData"]) -> "TensorData":
        if len(parts) == 1:
            return parts[0]
        first = parts[0]
        return TensorData({k: torch.cat([p.inputs[k] for p in parts]) for k in first.inputs},
                          {k: torch.cat([p.targets[k] for p in parts]) for k in first.targets})

    def to(self, device: torch.device) -> "TensorData":
        if device.type == "cpu":
            return self
        return TensorData({k: v.to(device) for k, v in self.inputs.items()}, {k: v.to(device) for k, v in self.targets.items()})


class Preprocessor:
    """Input and output features of a config, with their fitted state."""

    def __init__(self, config: Any) -> None:
        self.inputs: list[Feature] = [build_feature(f, config.preprocessing) for f in config.input_features]
        self.outputs: list[Feature] = [build_feature(f, config.preprocessing) for f in config.output_features]

    @property
    def features(self) -> list[Feature]:
        return [*self.inputs, *self.outputs]

    def fit(self, frame: pd.DataFrame, later: Sequence[pd.DataFrame] = ()) -> "Preprocessor":
        """Fit the features on the training split; `later`: the splits to be transformed next, in that order
        (features may start on them meanwhile: Feature.prefetch)."""
        for feature in self.outputs:
            if feature.type in ("binary", "category"):
                check_classes(sorted(label_strings(frame[feature.column]).dropna().unique()), feature.name,
                              f"the training split ({len(frame)} row{'s' if len(frame) != 1 else ''})")
        todo = [f for f in self.features if not f.fitted]  # a feature may arrive fitted (e.g. a pre-trained tokenizer)
        if later:
            for feature in todo:
                feature.prefetch(self._values(feature, frame), [self._values(feature, f) for f in later])
        for feature in todo:
            feature.fit(self._values(feature, frame))
        return self

    def fit_stream(self, chunks: Iterable[pd.DataFrame]) -> "Preprocessor":
        """`fit` in one pass over chunks of the training split (data.streaming): each feature merges
        its statistics chunk by chunk (Feature.fit_partial / fit_finish)."""
        todo = [f for f in self.features if not f.fitted]
        labels: dict[str, set[str]] = {f.column: set() for f in self.outputs if f.type in ("binary", "category")}
        rows = 0
        for chunk in chunks:
            rows += len(chunk)
            for name, seen in labels.items():
                seen.update(label_strings(chunk[name]).dropna().unique())
            for feature in todo:
                feature.fit_partial(self._values(feature, chunk))
        for name, seen in labels.items():
            check_classes(sorted(seen), name, f"the training split ({rows} row{'s' if rows != 1 else ''})")
        for feature in todo:
            feature.fit_finish()
        return self

    def transform(self, frame: pd.DataFrame, targets: bool = True, where: str = "data") -> TensorData:
        needed = self.features if targets else self.inputs
        check_feature_columns(frame, needed, where)
        check_scalar_cells(frame, [f for f in needed if f.type != "image"], where)
        inputs = {f.name: f.transform(self._values(f, frame)) for f in self.inputs}
        outs = {f.name: f.encode_target(self._values(f, frame)) for f in self.outputs} if targets else {}
        return TensorData(inputs, outs)

    @staticmethod
    def _values(feature: Feature, frame: pd.DataFrame) -> pd.Series:
        """The feature's cleaned values, from its source column (several features may read one)."""
        return feature.clean(frame[feature.column])[0]

    def state(self) -> dict[str, Any]:
        return {f.name: f.state() for f in self.features}

    def load_state(self, state: dict[str, Any]) -> "Preprocessor":
        for feature in self.features:
            feature.load_state(state[feature.name])
        return self
