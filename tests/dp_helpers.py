"""A small table and config shared by the data-parallel and streaming tests."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import torch


def table(path: Path, rows: int = 203) -> Path:
    """A small numeric + category table; 203 rows so the last batch does not split evenly."""
    rng = np.random.default_rng(0)
    x = rng.normal(size=(rows, 3))
    frame = pd.DataFrame({"a": x[:, 0], "b": x[:, 1], "c": rng.choice(["p", "q", "r"], rows),
                          "y": np.where(x[:, 0] + 0.5 * x[:, 1] > 0, "yes", "no")})
    frame.to_csv(path, index=False)
    return path


def config(data: Path, backend: dict | None = None, epochs: int = 3, **trainer: object) -> dict:
    cfg = {
        "data": {"train": str(data), "split": {"validation": 0.2, "test": 0.1}},
        "input_features": [{"name": "a", "type": "numeric"}, {"name": "b", "type": "numeric"},
                           {"name": "c", "type": "category"}],
        "output_features": [{"name": "y", "type": "binary"}],
        "model": {"type": "mlp", "hidden": [16], "dropout": 0.0},
        # a checkpoint after every epoch: the kill -9 tests stop runs between two of them
        "trainer": {"epochs": epochs, "batch_size": 20, "learning_rate": 0.01, "seed": 3, "checkpoint_interval_s": 0, **trainer},
    }
    if backend:
        cfg["backend"] = backend
    return cfg


def weights(run_dir: Path) -> dict[str, torch.Tensor]:
    from safetensors.torch import load_file

    return load_file(str(run_dir / "model" / "weights.safetensors"))
