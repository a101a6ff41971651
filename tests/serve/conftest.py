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
