"""Data loaded, cleaned, split and encoded once, reusable by many runs of configs that differ only
outside the data sections (e.g. the trials of a hyperparameter search): `kiln.train(config, data=prepared)`."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

import pandas as pd

from kiln.data.preprocessor import Preprocessor, TensorData
from kiln.errors import KilnError

DATA_SECTIONS = ("data", "preprocessing", "input_features", "output_features")


def data_key(config: Any) -> str:
    """What prepared data depends on: the data sections, plus a pre-trained run whose tokenizer the text input uses."""
    dumped = config.model_dump(mode="json")
    parts = {name: dumped[name] for name in DATA_SECTIONS}
    parts["pretrained"] = getattr(config.model, "pretrained", None)
    return json.dumps(parts, sort_keys=True)


@dataclass
class PreparedData:
    """Splits as frames and tensors, with the preprocessing fitted on the training split."""

    key: str
    frames: dict[str, pd.DataFrame]
    report: dict[str, Any]
    preprocessor: Preprocessor
    tensors: dict[str, TensorData]
    source: Any = None  # pre-trained encoder weights (model.pretrained), copied into each new network
    pooled: dict[str, Any] = field(default_factory=dict)  # a frozen encoder's pooled vectors, by cache key (supervised/frozen.py)

    @property
    def has_validation(self) -> bool:
        return "validation" in self.tensors

    def check(self, config: Any) -> None:
        """Refuse a config whose data sections differ from the ones this data was prepared with."""
        if data_key(config) != self.key:
            mine, theirs = json.loads(self.key), json.loads(data_key(config))
            changed = [name for name in mine if mine[name] != theirs.get(name)]
            raise KilnError(f"the prepared data does not match this config (different {', '.join(changed)}); "
                            "prepare it again from this config")
