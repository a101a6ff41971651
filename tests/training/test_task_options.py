"""Every task × every shared trainer option: it trains, and a run killed after its first round
resumes to exactly the weights and history of an uninterrupted run."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
import torch

import kiln
from kiln.training import Callback

WORDS = {1: ["good", "great", "fine"], 0: ["bad", "dull", "weak"]}
OPTIONS: dict[str, dict[str, Any]] = {
    "bf16": {"precision": "bf16"},
    "accumulation": {"gradient_accumulation": 2},
    "early_stopping": {"early_stopping": {"metric": "validation.loss", "patience": 1, "min_delta": 10.0}},
    "warmup_cosine": {"lr_schedule": {"type": "cosine", "warmup": 3, "min_lr": 1e-4}},
    "freeze_embeddings": {"freeze": ["embeddings"]},
    "layer_lr_decay": {"layer_lr_decay": 0.5},
}
TASKS = ["supervised", "language_modeling", "pretraining"]


@pytest.fixture(scope="module")
def texts(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 2, size=120)
    rows = [f"the film was {rng.choice(WORDS[int(y)])} and {rng.choice(WORDS[int(y)])}" for y in labels]
    root = tmp_path_factory.mktemp("task_options")
    table = root / "sentences.csv"
    pd.DataFrame({"sentence": rows, "label": labels}).to_csv(table, index=False)
    lines = root / "lines.txt"
    lines.write_text("\n".join(rows) + "\n", encoding="utf-8")
    return {"table": table, "lines": lines}


def _config(task: str, texts: dict[str, Path], option: dict[str, Any]) -> dict[str, Any]:
    encoder = {"d_model": 16, "heads": 2, "layers": 2}
    if task == "supervised":
        return {
            "data": {"train": str(texts["table"]), "split": {"validation": 0.2, "test": 0.2, "seed": 1}},
            "input_features": [{"name": "sentence", "type": "text", "max_length": 8}],
            "output_features": [{"name": "label", "type": "category"}],
            "model": {"type": "transformer", **encoder, "hidden": [8]},
            "trainer": {"epochs": 3, "batch_size": 16, "learning_rate": 3e-3, "seed": 3, "threads": 1, **option},
        }
    trainer = {"iterations": 9, "eval_interval": 3, "eval_iters": 2, "batch_size": 8, "learning_rate": 3e-3, "seed": 3,
               "threads": 1, **option}
    if task == "language_modeling":
        return {"task": task, "data": {"train": str(texts["lines"]), "split": {"validation": 0.2}},
                "tokenizer": {"type": "char"}, "model": {"type": "gpt", **encoder, "block_size": 16}, "trainer": trainer}
    return {"task": task, "data": {"train": [str(texts["table"])], "text_column": "sentence", "validation": 0.2},
            "tokenizer": {"type": "word", "vocab_size": 40, "max_length": 8},
            "model": {"type": "transformer", **encoder}, "trainer": trainer}


class _Killed(Exception):
    pass


def _kill_after_first_round(trainer: Any, row: dict[str, Any]) -> None:
    if trainer.round == 1:
        raise _Killed


def _state(model: Any) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in model.net.state_dict().items()}


def _history(model: Any) -> list[dict[str, Any]]:
    timing = ("tokens_per_s", "epoch_time", "round_time")
    return [{k: v for k, v in row.items() if k not in timing} for row in model.history]


@pytest.mark.parametrize("option", list(OPTIONS))
@pytest.mark.parametrize("task", TASKS)
def test_option_trains_and_resumes_exactly(task: str, option: str, texts: dict[str, Path], tmp_path: Path) -> None:
    full = _check_resume(_config(task, texts, OPTIONS[option]), tmp_path)
    if option == "early_stopping":  # min_delta 10 can never be met: patience 1 stops after round 2
        assert len(full.history) == 2


def _check_resume(config: dict[str, Any], tmp_path: Path) -> Any:
    """Train uninterrupted, and killed after round 1 then resumed: the same history and weights."""
    full = kiln.train(config, output=tmp_path / "full")
    assert all(math.isfinite(row["train_loss"]) for row in full.history)
    with pytest.raises(_Killed):
        kiln.train(config, output=tmp_path / "killed", callbacks=[_kill_after_first_round])
    resumed = kiln.train(config, resume=tmp_path / "killed")
    assert _history(resumed) == _history(full)
    expected = _state(full)
    for key, value in _state(resumed).items():
        assert torch.equal(value, expected[key]), key
    return full


class _Snapshot(Callback):
    """The token-embedding weights as they were when training began."""

    def on_train_begin(self, trainer: Any) -> None:
        self.before = {k: v.detach().clone() for k, v in trainer.net.state_dict().items()}


def _is_token_embedding(key: str) -> bool:
    return key.endswith(("token_embedding.weight", "embedding.weight", "wte.weight", "tok_emb.weight"))


@pytest.mark.parametrize("task", TASKS)
def test_freeze_embeddings_keeps_them_in_every_task(task: str, texts: dict[str, Path], tmp_path: Path) -> None:
    snapshot = _Snapshot()
    model = kiln.train(_config(task, texts, OPTIONS["freeze_embeddings"]), output=tmp_path / "run", callbacks=[snapshot])
    after = model.net.state_dict()
    embeddings = [k for k in snapshot.before if _is_token_embedding(k)]
    assert embeddings, f"no token embedding among {list(after)[:8]}"
    for key in embeddings:
        assert torch.equal(snapshot.before[key], after[key]), key
    assert any(not torch.equal(v, after[k]) for k, v in snapshot.before.items() if k not in embeddings)  # the rest trained



@pytest.mark.slow  # torch.compile takes about a minute per run on a small CPU
@pytest.mark.parametrize("task", ["supervised", "language_modeling"])
def test_compile_trains_and_resumes_exactly(task: str, texts: dict[str, Path], tmp_path: Path) -> None:
    _check_resume(_config(task, texts, {"compile": True}), tmp_path)
