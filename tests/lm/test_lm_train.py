"""Training, run directory, save/load, exact resume."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pandas as pd
import pytest
import torch

import kiln
from kiln.lm import LanguageModel
from kiln.training.config import IterationTrainerConfig
from kiln.training.schedule import lr_factor

from .conftest import lm_config


def test_run_directory_metrics_and_history(trained: LanguageModel) -> None:
    run = trained.run_dir
    for name in ("config.yaml", "metrics.json", "history.csv", "loss_curves.svg", "report.html",
                 "model/weights.safetensors", "model/model.json", "checkpoint/checkpoint.safetensors"):
        assert (run / name).is_file(), name
    metrics = json.loads((run / "metrics.json").read_text())
    for split in ("validation", "train"):
        assert math.isclose(metrics[split]["perplexity"], math.exp(metrics[split]["loss"]), rel_tol=1e-9)
    history = pd.read_csv(run / "history.csv")
    assert history["iteration"].tolist() == [10, 20, 30]
    assert {"train_loss", "validation_loss", "validation_perplexity", "lr", "tokens_per_s"} <= set(history.columns)
    assert history["validation_loss"].iloc[-1] < math.log(trained.tokenizer.vocab_size) - 0.3  # it learned something
    meta = json.loads((run / "model" / "model.json").read_text())
    assert meta["kind"] == "language_model" and meta["tokenizer"]["kind"] == "char"


def test_save_load_gives_identical_logits(trained: LanguageModel, tmp_path: Path) -> None:
    loaded = kiln.load(trained.run_dir)
    assert isinstance(loaded, LanguageModel)
    assert loaded.net.head.weight is loaded.net.tok_emb.weight  # tying survives loading
    idx = torch.tensor([trained.tokenizer.encode("the cat sat on th")[:16]])
    trained.net.eval()
    assert torch.equal(loaded.net(idx)[0], trained.net(idx)[0])
    again = LanguageModel.load(loaded.save(tmp_path / "copy"))
    assert torch.equal(again.net(idx)[0], trained.net(idx)[0])
    assert loaded.generate("the ", 20, temperature=0.8, seed=3) == trained.generate("the ", 20, temperature=0.8, seed=3)


def test_generate_api(trained: LanguageModel) -> None:
    text = trained.generate("the ", max_new_tokens=25, temperature=0.9, top_k=5, seed=1)
    assert isinstance(text, str) and len(text) == 25  # char tokenizer: one character per token
    assert "".join(trained.stream("the ", 25, 0.9, 5, None, 1)) == text
    assert trained.generate("the ", 25, 0.9, 5, seed=1, use_cache=False) == text
    assert trained.generate("the ", 25, 0.9, 5, seed=2) != text
    with pytest.raises(kiln.KilnError, match="never saw"):
        trained.generate("the \u20ac", 5)
    with pytest.raises(kiln.KilnError, match="max_new_tokens"):
        trained.generate("the ", 0)
    result = trained.evaluate("the cat sat on the mat.\na dog ran to the park!\n")
    assert result["perplexity"] == pytest.approx(math.exp(result["loss"]))


class Interrupt(Exception):
    pass


def test_resume_after_interruption_equals_uninterrupted_run(text_file: Path, tmp_path: Path) -> None:
    config = lm_config(text_file, iterations=20, eval_interval=5)
    config["model"]["attention_dropout"] = 0.1  # resume must restore the dropout RNG too
    full = kiln.train(config, output=tmp_path / "full")

    def stop_at_10(trainer, row) -> None:
        if row["iteration"] == 10:
            raise Interrupt

    with pytest.raises(Interrupt):
        kiln.train(config, output=tmp_path / "cut", callbacks=[stop_at_10])
    assert not (tmp_path / "cut" / "metrics.json").exists()
    resumed = kiln.train(config, resume=tmp_path / "cut")
    for key, value in full.net.state_dict().items():
        assert torch.equal(value, resumed.net.state_dict()[key]), key
    strip = lambda rows: [{k: v for k, v in r.items() if k != "tokens_per_s"} for r in rows]  # noqa: E731
    assert strip(resumed.history) == strip(full.history)
    assert resumed.metrics == full.metrics
    changed = lm_config(text_file, iterations=21, eval_interval=5)
    changed["model"]["attention_dropout"] = 0.1
    with pytest.raises(kiln.KilnError, match="trainer.iterations: 20 → 21"):
        kiln.train(changed, resume=tmp_path / "cut")


def test_schedule_warmup_then_cosine_to_min_lr() -> None:
    cfg = IterationTrainerConfig(iterations=100, learning_rate=1e-3, lr_schedule={"type": "cosine", "warmup": 10, "min_lr": 1e-4})
    lrs = [cfg.learning_rate * lr_factor(cfg.lr_schedule, i, cfg.iterations, cfg.learning_rate) for i in range(100)]
    assert lrs[0] == pytest.approx(1e-4) and lrs[9] == pytest.approx(1e-3)
    assert all(a >= b for a, b in zip(lrs[9:], lrs[10:]))
    assert lrs[-1] == pytest.approx(1e-4)


def test_bf16_and_gradient_accumulation_train(text_file: Path, tmp_path: Path) -> None:
    config = lm_config(text_file, iterations=3, eval_interval=3, precision="bf16", gradient_accumulation=2)
    model = kiln.train(config, output=tmp_path / "bf16")
    assert math.isfinite(model.metrics["validation"]["loss"])
    assert model.history[-1]["tokens"] == 3 * 4 * 2 * 16
