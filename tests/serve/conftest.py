"""Fixtures for the serving tests: tiny trained models shared by the session."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

os.environ.setdefault("OMP_NUM_THREADS", "1")
sys.path.insert(0, str(Path(__file__).parent))

from _helpers import config_for, make_frame  # noqa: E402


@pytest.fixture(scope="session")
def run_dirs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Two trained runs ('a' and 'b', different seeds → different weights) of the same small task."""
    import kiln

    root = tmp_path_factory.mktemp("serve-runs")
    data = root / "train.csv"
    make_frame().to_csv(data, index=False)
    runs = {}
    for tag, seed in (("a", 1), ("b", 2)):
        cfg = config_for(data)
        cfg["trainer"]["seed"] = seed
        kiln.train(cfg, output=root / f"titanic-{tag}", progress=False)
        runs[tag] = root / f"titanic-{tag}"
    return runs


@pytest.fixture(scope="session")
def run_dir(run_dirs: dict[str, Path]) -> Path:
    return run_dirs["a"]


LM_TEXT = "\n".join(["the cat sat on the mat.", "a dog ran to the park!", "ROMEO: what light breaks?"] * 40) + "\n"


@pytest.fixture(scope="session")
def lm_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny trained character-level GPT run."""
    import kiln

    root = tmp_path_factory.mktemp("served_lm")
    (root / "text.txt").write_text(LM_TEXT, encoding="utf-8")
    kiln.train({"task": "language_modeling", "data": {"train": str(root / "text.txt")}, "tokenizer": {"type": "char"},
                "model": {"type": "gpt", "layers": 1, "heads": 2, "d_model": 16, "block_size": 16},
                "trainer": {"iterations": 20, "batch_size": 4, "eval_interval": 10, "eval_iters": 2, "threads": 1}},
               output=root / "gpt")
    return root / "gpt"


@pytest.fixture(scope="session")
def image_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny trained model with an image input (8x8 grey PNG files) and a numeric one; the run
    directory holds the PNGs under `images/`."""
    import numpy as np
    import pandas as pd
    from PIL import Image

    import kiln

    root = tmp_path_factory.mktemp("served_image")
    (root / "images").mkdir()
    rng, rows = np.random.default_rng(0), []
    for i in range(40):
        label = i % 2
        Image.fromarray((rng.random((8, 8)) * 100 + label * 120).astype("uint8"), "L").save(root / "images" / f"{i}.png")
        rows.append({"img": str(root / "images" / f"{i}.png"), "size": float(i), "y": label})
    pd.DataFrame(rows).to_csv(root / "train.csv", index=False)
    kiln.train({"data": {"train": str(root / "train.csv"), "split": {"validation": 0.2, "test": 0.2, "seed": 1}},
                "input_features": [{"name": "img", "type": "image", "channels": 1}, {"name": "size", "type": "numeric"}],
                "output_features": [{"name": "y", "type": "binary"}],
                "model": {"type": "mlp", "hidden": [8]}, "trainer": {"epochs": 1, "batch_size": 8}},
               output=root / "run", progress=False)
    return root
