"""A tiny sentiment corpus and one tiny masked-LM pre-training run shared by the pre-training tests."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

GOOD = ["good", "great", "fine", "lovely", "superb"]
BAD = ["bad", "awful", "dull", "boring", "weak"]
THINGS = ["movie", "film", "plot", "cast", "story"]


def sentences(n: int, seed: int = 0) -> pd.DataFrame:
    """`the <thing> was <very> <good|bad> word` sentences; label 1 = a good word."""
    rng = np.random.default_rng(seed)
    rows = []
    for _ in range(n):
        label = int(rng.integers(2))
        word = rng.choice(GOOD if label else BAD)
        very = rng.choice(["", "very ", "quite "])
        rows.append({"sentence": f"the {rng.choice(THINGS)} was {very}{word} .", "label": label})
    return pd.DataFrame(rows)


def pretrain_config(sources: list[str], **trainer: Any) -> dict[str, Any]:
    return {
        "task": "pretraining",
        "data": {"train": sources, "text_column": "sentence", "validation": 0.1},
        "tokenizer": {"type": "word", "vocab_size": 100, "max_length": 12},
        "model": {"type": "transformer", "d_model": 16, "heads": 2, "layers": 2},
        "trainer": {"iterations": 60, "batch_size": 16, "learning_rate": 3e-3, "lr_schedule": {"type": "cosine", "warmup": 5, "min_lr": 1e-4}, "eval_interval": 30,
                    "eval_iters": 2, "threads": 1, **trainer},
    }


def finetune_config(train: Path, pretrained: Path | None, **trainer: Any) -> dict[str, Any]:
    model: dict[str, Any] = {"type": "transformer", "hidden": [8]}
    if pretrained is not None:
        model["pretrained"] = str(pretrained)
    else:
        model.update(d_model=16, heads=2, layers=2)
    return {
        "data": {"train": str(train), "split": {"validation": 0.2, "test": 0.2}},
        "input_features": [{"name": "sentence", "type": "text", "max_length": 12}],
        "output_features": [{"name": "label", "type": "category"}],
        "model": model,
        "trainer": {"epochs": 2, "batch_size": 16, "optimizer": "adamw", "learning_rate": 3e-3, "threads": 1, **trainer},
    }


@pytest.fixture(scope="session")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("pretrain_corpus")
    labelled = root / "labelled.csv"
    sentences(200, seed=1).to_csv(labelled, index=False)
    unlabelled = root / "unlabelled.csv"
    sentences(400, seed=2).drop(columns="label").to_csv(unlabelled, index=False)
    text = root / "lines.txt"
    text.write_text("\n".join(sentences(100, seed=3)["sentence"]) + "\n\n", encoding="utf-8")
    return {"labelled": labelled, "unlabelled": unlabelled, "text": text}


@pytest.fixture(scope="session")
def pretrained_run(corpus: dict[str, Path], tmp_path_factory: pytest.TempPathFactory) -> Path:
    from kiln.api import pretrain

    out = tmp_path_factory.mktemp("pretrained") / "run"
    pretrain(pretrain_config([str(corpus["unlabelled"]), str(corpus["text"])]), output=out)
    return out
