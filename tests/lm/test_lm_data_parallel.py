"""Language models on `backend: torchrun`: 2 workers, each training on half of every batch, end with
the weights of one process; the batch must split evenly."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from safetensors.torch import load_file

import kiln
from kiln.errors import KilnError

from .conftest import lm_config


def _weights(run_dir: Path) -> dict[str, torch.Tensor]:
    return load_file(str(run_dir / "model" / "weights.safetensors"))


def _config(text: Path, **backend: object) -> dict:
    cfg = lm_config(text, iterations=12, eval_interval=6, gradient_accumulation=2)
    cfg["model"]["attention_dropout"] = 0.0  # dropout masks are drawn per worker
    if backend:
        cfg["backend"] = backend
    return cfg


def test_two_workers_match_one_process(text_file: Path, tmp_path: Path) -> None:
    one = kiln.train(_config(text_file), output=tmp_path / "one")
    two = kiln.train(_config(text_file, type="torchrun", workers=2), output=tmp_path / "two")
    w1, w2 = _weights(tmp_path / "one"), _weights(tmp_path / "two")
    assert w1.keys() == w2.keys()
    for name in w1:
        assert torch.allclose(w1[name], w2[name], atol=1e-5, rtol=0), name
    assert [r["train_loss"] for r in two.history] == pytest.approx([r["train_loss"] for r in one.history], abs=1e-5)
    assert two.metrics["validation"]["loss"] == pytest.approx(one.metrics["validation"]["loss"], abs=1e-5)
    assert '"workers": 2' in (tmp_path / "two" / "data_report.json").read_text()


def test_a_batch_that_does_not_split_evenly_is_one_line(text_file: Path, tmp_path: Path) -> None:
    cfg = _config(text_file, type="torchrun", workers=3)
    with pytest.raises(KilnError, match=r"trainer.batch_size \(4\) must be a multiple of backend.workers \(3\)"):
        kiln.train(cfg, output=tmp_path / "run")
