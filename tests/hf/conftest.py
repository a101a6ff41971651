"""Fixtures for model type `hf`: a tiny random BERT checkpoint (hidden 32, 2 layers, 2 heads) with a
WordPiece tokenizer, saved with save_pretrained, and a small synthetic sentiment dataset."""

from __future__ import annotations

import contextlib
import io
import os
import shutil
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import pytest  # noqa: E402

SPECIAL = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
POSITIVE = ["good", "great", "fine", "lovely", "superb", "fun", "moving", "clever", "warm", "bright", "charming",
            "brilliant", "gripping", "touching", "funny", "smart", "beautiful", "delightful", "rich", "honest"]
NEGATIVE = ["bad", "awful", "dull", "boring", "poor", "weak", "flat", "silly", "messy", "tired", "bland", "stale",
            "clumsy", "empty", "ugly", "lazy", "tedious", "hollow", "cheap", "grim"]
FILLER = ["the", "a", "movie", "film", "story", "plot", "acting", "cast", "script", "ending", "music", "scenes",
          "was", "is", "very", "quite", "really", "and", "but", "with", "its", "this", "that", "of", "it", "so",
          "too", "an", "at", "times", "overall", "director", "characters", "dialogue", "pace", "visuals", "humor",
          "performance", "sequel", "drama", "comedy", "thriller", "script", "year", "one", "two", "first", "last",
          "old", "new", "long", "short", "mostly", "often", "##s", "##ly", "##ing", ".", ",", "!", "?"]
VOCAB = SPECIAL + list(dict.fromkeys(POSITIVE + NEGATIVE + FILLER))


def make_checkpoint(path: Path, seed: int = 0) -> Path:
    """A random BertModel + BertTokenizerFast (from a vocab.txt), written with save_pretrained."""
    import torch
    import transformers

    transformers.utils.logging.disable_progress_bar()
    vocab_dir = path.parent / f"{path.name}-vocab"
    vocab_dir.mkdir(parents=True, exist_ok=True)
    (vocab_dir / "vocab.txt").write_text("\n".join(VOCAB) + "\n", encoding="utf-8")
    tokenizer = transformers.BertTokenizerFast.from_pretrained(str(vocab_dir), local_files_only=True)
    tokenizer.save_pretrained(str(path))
    config = transformers.BertConfig(vocab_size=len(VOCAB), hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                                     intermediate_size=37, max_position_embeddings=128)
    torch.manual_seed(seed)
    transformers.BertModel(config).save_pretrained(str(path))
    return path


def make_sentiment(rows: int, seed: int = 0) -> pd.DataFrame:
    """Short reviews: fillers plus one or two sentiment words that decide the label."""
    rng = np.random.default_rng(seed)
    sentences, labels = [], []
    for i in range(rows):
        label = i % 2
        words = list(rng.choice(FILLER[:50], size=rng.integers(3, 8)))
        for _ in range(rng.integers(1, 3)):
            words.insert(int(rng.integers(0, len(words) + 1)), str(rng.choice(POSITIVE if label else NEGATIVE)))
        sentences.append(" ".join(words))
        labels.append(label)
    return pd.DataFrame({"sentence": sentences, "label": labels})


@pytest.fixture(scope="session")
def tiny_bert(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_checkpoint(tmp_path_factory.mktemp("hf") / "tiny-bert")


@pytest.fixture(scope="session")
def new_checkpoint() -> Callable[..., Path]:
    """make_checkpoint(path, seed): write another random tiny BERT."""
    return make_checkpoint


@pytest.fixture
def bert_copy(tiny_bert: Path, tmp_path: Path) -> Path:
    """A private copy of the checkpoint, for tests that change or remove it."""
    return Path(shutil.copytree(tiny_bert, tmp_path / "tiny-bert-copy"))


@pytest.fixture(scope="session")
def sentiment(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("hf-data") / "sentiment.csv"
    make_sentiment(200).to_csv(path, index=False)
    return path


@pytest.fixture(scope="session")
def hf_config(tiny_bert: Path, sentiment: Path) -> Callable[..., dict[str, Any]]:
    """A config dict fine-tuning the tiny BERT on the sentiment CSV; keyword args update `model`."""

    def make(checkpoint: Path | None = None, trainer: dict[str, Any] | None = None, **model: Any) -> dict[str, Any]:
        return {
            "data": {"train": str(sentiment), "split": {"validation": 0.2, "test": 0.2, "seed": 1}},
            "input_features": [{"name": "sentence", "type": "text", "max_length": 16}],
            "output_features": [{"name": "label", "type": "category"}],
            "model": {"type": "hf", "path": str(checkpoint or tiny_bert), **model},
            "trainer": {"epochs": 3, "batch_size": 16, "optimizer": "adamw", "learning_rate": 1e-3,
                        "lr_schedule": {"type": "linear_warmup", "warmup": 0.1}, **(trainer or {})},
        }

    return make


@pytest.fixture
def cli(monkeypatch: pytest.MonkeyPatch) -> Callable[..., tuple[int, str, str]]:
    """Run `kiln ARGS` in-process; returns (exit code, stdout, stderr)."""
    from kiln.cli import main

    def run(*args: Any) -> tuple[int, str, str]:
        monkeypatch.setattr(sys, "argv", ["kiln", *map(str, args)])
        out, err = io.StringIO(), io.StringIO()
        try:
            with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
                main()
            code = 0
        except SystemExit as exc:
            code = exc.code if isinstance(exc.code, int) else 1
        return code, out.getvalue(), err.getvalue()

    return run


@pytest.fixture
def example_on_sst2_slice(tiny_bert: Path, data_dir: Path, tmp_path: Path,
                          monkeypatch: pytest.MonkeyPatch) -> Callable[..., tuple[dict[str, Any], Path, Path]]:
    """examples/NAME.yaml with the tiny checkpoint as KILN_BERT and `epochs`, written to tmp_path, and a
    200-row slice of SST-2's train.tsv: returns (the example as read, its config path, the slice path)."""
    import yaml

    monkeypatch.setenv("KILN_BERT", str(tiny_bert))
    monkeypatch.setenv("KILN_DATA", str(data_dir))

    def make(name: str, epochs: int) -> tuple[dict[str, Any], Path, Path]:
        example = yaml.safe_load((Path(__file__).parents[2] / "examples" / f"{name}.yaml").read_text())
        written = {**example, "trainer": {**example["trainer"], "epochs": epochs}}
        config = tmp_path / f"{name}.yaml"
        config.write_text(yaml.safe_dump(written), encoding="utf-8")
        lines = (data_dir / "sst2" / "train.tsv").read_bytes().split(b"\n")  # rows end at \n only (stray \r inside)
        (tmp_path / "slice.tsv").write_bytes(b"\n".join(lines[:201]) + b"\n")  # header + 200 rows
        return example, config, tmp_path / "slice.tsv"

    return make
