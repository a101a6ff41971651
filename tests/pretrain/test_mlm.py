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
    for name in ("model/weights.safetensors", "model/model.json", "report.html", "loss_curves.svg", "config.yaml"):
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


def test_special_tokens_are_never_chosen_nor_drawn() -> None:
    ids = _ids(rows=300, length=30, real=25, vocab=50)
    ids[:, ::3] = 1  # every third token <unk>
    objective = ObjectiveConfig(mask_fraction=0.5, replace_with_mask=0.0, random_token=1.0)  # every chosen token → random
    x, y = mask_tokens(ids, objective, mask_id=50, vocab_size=50, generator=torch.Generator().manual_seed(3))
    chosen = y != IGNORE
    assert not (chosen & (ids <= 1)).any(), "<pad> and <unk> are never prediction targets"
    assert torch.equal(x[ids <= 1], ids[ids <= 1]), "<pad> and <unk> stay as they are"
    drawn = x[chosen]
    assert drawn.min() >= 2 and drawn.max() < 50, "random replacements are vocabulary words, never <pad>/<unk>/<mask>"
    words = ids > 1
    assert abs(chosen.sum().item() / words.sum().item() - 0.5) < 0.02


def test_embeddings_start_at_the_scale_of_the_positions() -> None:
    from kiln.models.transformer import TransformerEncoderConfig
    from kiln.pretrain.mlm import MaskedLanguageModel

    torch.manual_seed(0)
    net = MaskedLanguageModel(TransformerEncoderConfig(d_model=64, heads=4, layers=2), vocab_size=5000, max_length=32).eval()
    enc = net.encoder
    assert not enc.embedding.weight[0].any(), "<pad> row is zero"
    scaled = enc.embedding.weight[1:] * enc.scale
    assert 0.9 < scaled.std().item() < 1.1  # positions: entries in [-1, 1], rms ~0.7
    x = torch.randint(2, 5000, (32, 20), generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        h0 = enc.positions(enc.embedding(x) * enc.scale)
        h = h0
        for layer in enc.layers:
            h = layer(h, x != 0)
        change = ((h - h0).norm(dim=-1) / h0.norm(dim=-1)).mean().item()
        logits, _ = net(x)
    assert change > 0.3, f"the layers move the residual stream by {change:.2f} of its norm (not a bag of words)"
    assert 0.5 < logits.std().item() < 2.0


def test_runs_saved_before_the_logit_scale_load_with_the_old_head(pretrained_run: Path, tmp_path: Path) -> None:
    import shutil

    old = tmp_path / "old"
    shutil.copytree(pretrained_run / "model", old / "model")
    meta = json.loads((old / "model" / "model.json").read_text())
    assert meta.pop("logit_scale") == 1.0
    (old / "model" / "model.json").write_text(json.dumps(meta))
    assert PretrainedEncoder.load(old).net.logit_scale == pytest.approx(16 ** -0.5)
