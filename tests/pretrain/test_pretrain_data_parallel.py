"""Masked-LM pre-training on `backend: torchrun`: 2 workers end with the weights of one process."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from kiln.api import pretrain

from .conftest import pretrain_config


def test_two_workers_match_one_process(corpus: dict[str, Path], tmp_path: Path) -> None:
    cfg = pretrain_config([str(corpus["unlabelled"])], iterations=10, eval_interval=5)
    cfg["model"]["attention_dropout"] = 0.0  # dropout masks are drawn per worker
    one = pretrain(cfg, output=tmp_path / "one")
    two = pretrain({**cfg, "backend": {"type": "torchrun", "workers": 2}}, output=tmp_path / "two")
    w1 = load_file(str(tmp_path / "one" / "model" / "weights.safetensors"))
    w2 = load_file(str(tmp_path / "two" / "model" / "weights.safetensors"))
    assert w1.keys() == w2.keys()
    for name in w1:
        if name.endswith("k_proj.bias"):  # softmax ignores it: its true gradient is 0 and Adam scales float noise up to lr
            continue
        assert torch.allclose(w1[name], w2[name], atol=1e-5, rtol=0), name
    assert two.metrics["validation"]["loss"] == pytest.approx(one.metrics["validation"]["loss"], abs=1e-5)
    assert [r["train_loss"] for r in two.history] == pytest.approx([r["train_loss"] for r in one.history], abs=1e-5)
