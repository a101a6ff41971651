"""Tiny texts and one tiny trained language model shared by the kiln.lm tests."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

LINES = [
    "the cat sat on the mat.",
    "a dog ran to the park!",
    "Birds sing at dawn; bees hum at noon.",
    "ROMEO: what light through yonder window breaks?",
    "JULIET: o romeo, romeo, wherefore art thou?",
]


def tiny_text(repeats: int = 12) -> str:
    """About 2,000 characters of repetitive text: learnable in a few iterations."""
    return "\n".join(LINES[(i * 3) % len(LINES)] for i in range(repeats * len(LINES))) + "\n"


def lm_config(text: Path, **trainer: Any) -> dict[str, Any]:
    return {
        "task": "language_modeling",
        "data": {"train": str(text), "split": {"validation": 0.2}},
        "tokenizer": {"type": "char"},
        "model": {"type": "gpt", "layers": 2, "heads": 2, "d_model": 16, "block_size": 16},
        "trainer": {"iterations": 20, "batch_size": 4, "learning_rate": 3e-3, "lr_schedule": {"type": "cosine", "warmup": 2, "min_lr": 1e-4}, "eval_interval": 5,
                    "eval_iters": 2, "seed": 7, "threads": 1, **trainer},
    }


@pytest.fixture(scope="session")
def text_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("lm_text") / "tiny.txt"
    path.write_text(tiny_text(), encoding="utf-8")
    return path


@pytest.fixture(scope="session")
def trained(tmp_path_factory: pytest.TempPathFactory, text_file: Path) -> Any:
    """A tiny char-level GPT trained for 30 iterations (the run directory is `.run_dir`)."""
    import kiln

    out = tmp_path_factory.mktemp("lm_run") / "run"
    return kiln.train(lm_config(text_file, iterations=30, eval_interval=10), output=out)
