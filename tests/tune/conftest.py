"""Tiny tables and search configs shared by the kiln tune tests (a few epochs of a small MLP each)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest


@pytest.fixture(scope="session")
def regression_csv(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """200 rows of y = 3 a - 2 b + noise: learnable in a few epochs, and SGD diverges at large learning rates."""
    rng = np.random.default_rng(0)
    a, b = rng.normal(size=200), rng.normal(size=200)
    frame = pd.DataFrame({"a": a, "b": b, "y": 3 * a - 2 * b + rng.normal(scale=0.1, size=200)})
    path = tmp_path_factory.mktemp("tune_data") / "regression.csv"
    frame.to_csv(path, index=False)
    return path


def search_config(data: Path, parameters: dict[str, Any] | None = None, **tune: Any) -> dict[str, Any]:
    """A small regression config with a tune: section; keyword args go to `tune`."""
    return {
        "data": {"train": str(data), "split": {"validation": 0.25, "test": 0.15, "seed": 3}},
        "input_features": [{"name": "a", "type": "numeric"}, {"name": "b", "type": "numeric"}],
        "output_features": [{"name": "y", "type": "numeric"}],
        "model": {"type": "mlp", "hidden": [8], "dropout": 0.0},
        "trainer": {"epochs": 3, "batch_size": 32, "learning_rate": 0.01, "optimizer": "sgd", "momentum": 0.0},
        "tune": {
            "trials": 4,
            "sampler": {"type": "random", "seed": 7},
            "pruner": {"type": "none"},
            "parameters": parameters or {"trainer.learning_rate": {"type": "float", "low": 1e-3, "high": 0.1, "log": True},
                                         "model.hidden": {"type": "choice", "values": [[4], [8, 4]]}},
            **tune,
        },
    }


@pytest.fixture(scope="session")
def config_for(regression_csv: Path):
    def make(parameters: dict[str, Any] | None = None, **tune: Any) -> dict[str, Any]:
        return search_config(regression_csv, parameters, **tune)

    return make


@pytest.fixture(scope="session")
def ray_cluster():
    """One local Ray cluster (2 CPUs) for the whole test session; tests skip when Ray is not installed."""
    ray = pytest.importorskip("ray", reason="ray is not installed (pip install 'kiln[ray]')")
    started = not ray.is_initialized()
    if started:
        ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, configure_logging=False)
    yield ray
    if started:
        ray.shutdown()
