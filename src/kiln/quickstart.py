"""`kiln quickstart`: the source material's MNIST-style digit MLP on scikit-learn's bundled digits.

CONFIG must stay identical to examples/digits_mlp.yaml (tests/test_examples.py checks it).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import kiln

CONFIG: dict[str, Any] = {
    "data": {"train": "sklearn:digits", "split": {"validation": 0.2, "test": 0.2, "seed": 42}},
    "input_features": [{"name": "image", "type": "image", "normalization": "per_pixel"}],
    "output_features": [{"name": "label", "type": "category"}],
    "model": {"type": "mlp", "hidden": [256, 128], "dropout": 0.4, "activation": "relu"},
    "trainer": {"epochs": 30, "batch_size": 32, "optimizer": "adam", "learning_rate": 0.002, "lr_schedule": {"type": "cosine"}},
}


def run(output: str | Path = "runs/quickstart", progress: bool = True) -> kiln.Model:
    return kiln.train(CONFIG, output=output, progress=progress)
