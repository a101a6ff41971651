"""Next-token pre-training (a GPT language-model run) fine-tuned for classification with model.type gpt."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
import torch

import kiln
from kiln.errors import KilnError
from kiln.lm import LanguageModel
from kiln.api import pretrain
from kiln.training.optim import parameter_groups

from .conftest import sentences


@pytest.fixture(scope="module")
def gpt_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("gpt_pretrain")
    text = root / "corpus.txt"
    text.write_text("\n".join(sentences(300, seed=4)["sentence"]) + "\n", encoding="utf-8")
    config = {
        "task": "language_modeling",
        "data": {"train": str(text), "split": {"validation": 0.1}},
        "tokenizer": {"type": "word", "lowercase": True},
        "model": {"type": "gpt", "layers": 2, "heads": 2, "d_model": 16, "block_size": 16},
        "trainer": {"iterations": 40, "batch_size": 8, "learning_rate": 3e-3, "lr_schedule": {"type": "cosine", "warmup": 4, "min_lr": 1e-4}, "eval_interval": 20,
                    "eval_iters": 2, "threads": 1},
    }
    model = pretrain(config, output=root / "run")
    assert isinstance(model, LanguageModel)
    return root / "run"


def _config(train: Path, pretrained: Path | None, model_type: str = "gpt", **trainer: object) -> dict:
    model = {"type": model_type, "hidden": [8]} | ({"pretrained": str(pretrained)} if pretrained else {})
    return {
        "data": {"train": str(train), "split": {"validation": 0.2, "test": 0.2}},
        "input_features": [{"name": "sentence", "type": "text", "max_length": 12}],
        "output_features": [{"name": "label", "type": "category"}],
        "model": model,
        "trainer": {"epochs": 15, "batch_size": 16, "optimizer": "adamw", "learning_rate": 3e-3, "threads": 1, **trainer},
    }


def test_gpt_run_fine_tunes_with_its_weights_and_tokenizer(gpt_run: Path, corpus: dict[str, Path], tmp_path: Path) -> None:
    lm = LanguageModel.load(gpt_run)
    frozen = kiln.train(_config(corpus["labelled"], gpt_run, freeze=["encoder"], epochs=1), output=tmp_path / "frozen")
    for key, value in lm.net.state_dict().items():
        assert torch.equal(frozen.net.encoders[0].gpt.state_dict()[key], value), key
    assert frozen.preprocessor.inputs[0].tokenizer.state() == lm.tokenizer.state()
    model = kiln.train(_config(corpus["labelled"], gpt_run), output=tmp_path / "ft")
    assert model.config.model.d_model == 16 and model.config.model.block_size == 16
    assert model.metrics["test"]["accuracy"] >= 0.9
    frame = pd.read_csv(corpus["labelled"]).head(10)
    assert kiln.load(tmp_path / "ft").predict(frame).equals(model.predict(frame))


def test_layer_decay_reaches_gpt_blocks(gpt_run: Path, corpus: dict[str, Path], tmp_path: Path) -> None:
    model = kiln.train(_config(corpus["labelled"], gpt_run, epochs=1), output=tmp_path / "m")
    cfg = model.config.trainer.model_copy(update={"layer_lr_decay": 0.5, "learning_rate": 1.0})
    lr_of = {id(p): g["lr"] for g in parameter_groups(model.net, cfg) for p in g["params"]}
    gpt = model.net.encoders[0].gpt
    assert lr_of[id(gpt.blocks[1].attn.qkv.weight)] == 0.5 and lr_of[id(gpt.blocks[0].attn.qkv.weight)] == 0.25
    assert lr_of[id(gpt.tok_emb.weight)] == 0.125 and lr_of[id(gpt.ln_f.weight)] == 1.0


def test_gpt_run_needs_model_type_gpt(gpt_run: Path, corpus: dict[str, Path]) -> None:
    with pytest.raises(KilnError, match="is a language model run; fine-tune it with model.type gpt"):
        kiln.train(_config(corpus["labelled"], gpt_run, model_type="transformer"))


def test_max_length_beyond_block_size_is_refused(gpt_run: Path, corpus: dict[str, Path]) -> None:
    config = _config(corpus["labelled"], gpt_run)
    config["input_features"][0]["max_length"] = 40
    with pytest.raises(KilnError, match="max_length \\(40\\) exceeds model.block_size \\(16\\)"):
        kiln.train(config)
