"""The masked-LM collator and the pre-training run."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

import kiln
from kiln.errors import KilnError
from kiln.api import pretrain
from kiln.pretrain import PretrainedEncoder
from kiln.pretrain.config import ObjectiveConfig
from kiln.pretrain.mlm import IGNORE, MaskedSampler, mask_tokens

from .conftest import pretrain_config


def _ids(rows: int = 400, length: int = 50, real: int = 40, vocab: int = 1000) -> torch.Tensor:
    ids = torch.randint(2, vocab, (rows, length), generator=torch.Generator().manual_seed(0))
    ids[:, real:] = 0
    return ids


def test_masks_the_advertised_fraction() -> None:
    ids = _ids()
    objective = ObjectiveConfig(mask_fraction=0.15)
    x, y = mask_tokens(ids, objective, mask_id=1000, vocab_size=1000, generator=torch.Generator().manual_seed(1))
    chosen = y != IGNORE
    real = ids != 0
    assert not (chosen & ~real).any(), "padding is never chosen"
    fraction = chosen.sum().item() / real.sum().item()
    assert abs(fraction - 0.15) < 0.01
    masked = (x[chosen] == 1000).float().mean().item()
    kept = (x[chosen] == ids[chosen]).float().mean().item()
    assert abs(masked - 0.8) < 0.03 and abs(kept - 0.1) < 0.03  # the rest are random tokens
    assert torch.equal(y[chosen], ids[chosen]), "targets are the original tokens"
    assert torch.equal(x[~chosen], ids[~chosen]), "unchosen tokens are untouched"


def test_masking_fraction_follows_config_and_seed() -> None:
    ids = _ids()
    objective = ObjectiveConfig(mask_fraction=0.4, replace_with_mask=1.0, random_token=0.0)
    x1, y1 = mask_tokens(ids, objective, 1000, 1000, torch.Generator().manual_seed(5))
    x2, y2 = mask_tokens(ids, objective, 1000, 1000, torch.Generator().manual_seed(5))
    assert torch.equal(x1, x2) and torch.equal(y1, y2)
    chosen = y1 != IGNORE
    assert abs(chosen.sum().item() / (ids != 0).sum().item() - 0.4) < 0.015
    assert (x1[chosen] == 1000).all()


def test_sampler_trims_padding_columns() -> None:
    ids = _ids(rows=10, length=30, real=7)
    x, y = MaskedSampler(ObjectiveConfig(), 1000, 1000).sample(ids, 4, torch.Generator().manual_seed(0))
    assert x.shape == (4, 7) and y.shape == (4, 7)


def test_pretraining_run_learns_and_saves(pretrained_run: Path) -> None:
    history = (pretrained_run / "history.csv").read_text().splitlines()
    first, last = (float(r.split(",")[3]) for r in (history[1], history[-1]))
    assert last < first, "validation MLM loss falls"
    metrics = json.loads((pretrained_run / "metrics.json").read_text())
    assert {"loss", "perplexity", "masked_accuracy"} <= set(metrics["validation"])
    for name in ("model/weights.safetensors", "model/model.json", "report.html", "loss_curves.png", "config.yaml"):
        assert (pretrained_run / name).is_file(), name
    loaded = kiln.load(pretrained_run)
    assert isinstance(loaded, PretrainedEncoder)
    fillers = loaded.predict_masked("the movie was <mask> .", top_k=3)
    assert len(fillers) == 1 and len(fillers[0]) == 3


def test_pretraining_resume_refuses_changed_config(corpus: dict[str, Path], tmp_path: Path) -> None:
    config = pretrain_config([str(corpus["unlabelled"])], iterations=10, eval_interval=5)
    pretrain(config, output=tmp_path / "run")
    changed = pretrain_config([str(corpus["unlabelled"])], iterations=10, eval_interval=5, learning_rate=1e-2)
    with pytest.raises(KilnError, match="learning_rate"):
        pretrain(changed, resume=tmp_path / "run")


def test_missing_text_column_names_the_columns(corpus: dict[str, Path]) -> None:
    config = pretrain_config([str(corpus["unlabelled"])])
    config["data"]["text_column"] = "review"
    with pytest.raises(KilnError, match="column 'review'.*sentence"):
        pretrain(config)
