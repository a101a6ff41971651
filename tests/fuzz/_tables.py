"""Small tables and configs shared by the fuzz tests."""

from __future__ import annotations

import numpy as np
import pandas as pd


def clean_frame(n: int = 60, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    x = rng.normal(size=n)
    color = rng.choice(["red", "green", "blue"], size=n)
    words = np.array(["good", "bad", "fine", "awful", "great"])
    y = ((x + (color == "red")) > 0.5).astype(int)
    return pd.DataFrame({"x": x, "color": color, "flag": rng.choice(["yes", "no"], size=n),
                         "t": [" ".join(rng.choice(words, 3)) for _ in range(n)], "y": y})


def small_config(path: str) -> dict:
    return {"data": {"train": path, "split": {"validation": 0.2, "test": 0.2, "seed": 1}},
            "input_features": [{"name": "x", "type": "numeric"}, {"name": "color", "type": "category"},
                               {"name": "flag", "type": "binary"}, {"name": "t", "type": "text", "max_length": 6}],
            "output_features": [{"name": "y", "type": "binary"}],
            "model": {"type": "mlp", "hidden": [4]}, "trainer": {"epochs": 1, "batch_size": 16, "threads": 1}}
