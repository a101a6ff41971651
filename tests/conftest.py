"""Shared fixtures. Threads are pinned so tests behave on small shared CPUs."""

from __future__ import annotations

import os

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("KILN_THREADS", "1")

import sys  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402

torch.set_num_threads(1)
ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(Path(__file__).resolve().parent))  # shared helpers: tests/cli_helpers.py
DATA = Path(os.environ.get("KILN_DATA") or ROOT.parent / "shared" / "data")


@pytest.fixture(scope="session")
def data_dir() -> Path:
    assert DATA.is_dir(), f"shared datasets not found at {DATA}; set KILN_DATA"
    return DATA


@pytest.fixture
def tabular(tmp_path: Path) -> Path:
    """A small, learnable binary-classification CSV with mixed types and missing values."""
    rng = np.random.default_rng(0)
    n = 240
    x = rng.normal(size=n)
    color = rng.choice(["red", "green", "blue"], size=n)
    y = ((x + (color == "red") * 1.5 + rng.normal(scale=0.3, size=n)) > 0.5).astype(int)
    frame = pd.DataFrame({"x": x, "color": color, "flag": rng.choice(["yes", "no"], size=n), "y": y})
    frame.loc[::17, "x"] = np.nan
    path = tmp_path / "tabular.csv"
    frame.to_csv(path, index=False)
    return path


@pytest.fixture
def tabular_config(tabular: Path):
    """A function building a small config for the `tabular` CSV; keyword args go to `trainer`."""

    def make(**trainer: object) -> dict:
        return _tabular_config(tabular, **trainer)

    return make


def _tabular_config(path: Path, **trainer: object) -> dict:
    return {
        "data": {"train": str(path), "split": {"validation": 0.2, "test": 0.2, "seed": 1}},
        "input_features": [
            {"name": "x", "type": "numeric"},
            {"name": "color", "type": "category"},
            {"name": "flag", "type": "binary"},
        ],
        "output_features": [{"name": "y", "type": "binary"}],
        "model": {"type": "mlp", "hidden": [16], "dropout": 0.1},
        "trainer": {"epochs": 4, "batch_size": 32, "learning_rate": 0.01, **trainer},
    }
