"""Fine-tuning from a pre-training run: weights and tokenizer really load; freeze; layer-wise rates."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
import torch
from torch.nn import functional as F

import kiln
from kiln.supervised.finetune import resolve_pretrained
from kiln.supervised.task import fresh as _fresh, load_splits
from kiln.supervised.config import load_supervised_config
from kiln.errors import KilnError
from kiln.pretrain import PretrainedEncoder
from kiln.pretrain.mlm import IGNORE, MaskedLanguageModel, MaskedSampler
from kiln.training.optim import parameter_groups

from .conftest import finetune_config


def _network(corpus: dict[str, Path], pretrained: Path) -> tuple:
    config = resolve_pretrained(load_supervised_config(finetune_config(corpus["labelled"], pretrained)))
    frames, _ = load_splits(config)
    pre, net = _fresh(config, frames["train"])
    return config, pre, net


def test_step_zero_loss_is_below_a_fresh_model(corpus: dict[str, Path], pretrained_run: Path) -> None:
    """Before any fine-tuning step the network's text encoder is the pre-trained one: under the
    pre-training head its masked-LM loss is far below that of a freshly initialised encoder of the
    same architecture (what the same config builds without model.pretrained)."""
    _, pre, net = _network(corpus, pretrained_run)
    encoder = PretrainedEncoder.load(pretrained_run)
    mlm = encoder.net
    torch.manual_seed(0)
    fresh = MaskedLanguageModel(encoder.config.model, mlm.mask_id, encoder.config.tokenizer.max_length).encoder
    ids = pre.transform(pd.read_csv(corpus["labelled"]), targets=False).inputs["sentence"]
    batches = MaskedSampler(encoder.config.objective, mlm.mask_id, mlm.mask_id).fixed(ids, 4, 32, seed=3)

    def loss_with(text_encoder: torch.nn.Module) -> float:
        text_encoder.eval()
        mlm.eval()
        total = 0.0
        with torch.no_grad():
            for x, y in batches:
                h = text_encoder.hidden_states(x)[y != IGNORE]
                logits = F.linear(mlm.transform(h), text_encoder.embedding.weight) * mlm.logit_scale + mlm.bias
                total += F.cross_entropy(logits, y[y != IGNORE]).item()
        return total / len(batches)

    pretrained_loss, fresh_loss = loss_with(net.encoders[0]), loss_with(fresh)
    assert pretrained_loss < fresh_loss - 1.0, (pretrained_loss, fresh_loss)
    for key, value in mlm.encoder.state_dict().items():
        assert torch.equal(net.encoders[0].state_dict()[key], value), key


def test_finetune_uses_pretrained_tokenizer_and_trains(corpus: dict[str, Path], pretrained_run: Path, tmp_path: Path) -> None:
    model = kiln.train(finetune_config(corpus["labelled"], pretrained_run, epochs=20), output=tmp_path / "ft")
    encoder = PretrainedEncoder.load(pretrained_run)
    assert model.preprocessor.inputs[0].tokenizer.state() == encoder.tokenizer
    assert model.config.model.d_model == 16 and model.config.model.layers == 2  # taken from the pre-training run
    assert model.metrics["test"]["accuracy"] >= 0.9
    reloaded = kiln.load(tmp_path / "ft")
    frame = pd.read_csv(corpus["labelled"]).head(20)
    assert reloaded.predict(frame).equals(model.predict(frame))


def test_freeze_keeps_encoder_weights(corpus: dict[str, Path], pretrained_run: Path, tmp_path: Path) -> None:
    encoder = PretrainedEncoder.load(pretrained_run).net.encoder.state_dict()
    emb = kiln.train(finetune_config(corpus["labelled"], pretrained_run, freeze=["embeddings"]), output=tmp_path / "e")
    state = emb.net.encoders[0].state_dict()
    assert torch.equal(state["embedding.weight"], encoder["embedding.weight"])
    assert not torch.equal(state["layers.0.attn.q_proj.weight"], encoder["layers.0.attn.q_proj.weight"])
    whole = kiln.train(finetune_config(corpus["labelled"], pretrained_run, freeze=["encoder"]), output=tmp_path / "w")
    for key, value in whole.net.encoders[0].state_dict().items():
        assert torch.equal(value, encoder[key]), key


def test_layer_lr_decay_groups(corpus: dict[str, Path], pretrained_run: Path) -> None:
    config, _, net = _network(corpus, pretrained_run)
    cfg = config.trainer.model_copy(update={"layer_lr_decay": 0.5, "learning_rate": 1.0})
    lr_of = {id(p): g["lr"] for g in parameter_groups(net, cfg) for p in g["params"]}
    enc = net.encoders[0]
    assert lr_of[id(enc.layers[1].attn.q_proj.weight)] == 0.5
    assert lr_of[id(enc.layers[0].attn.q_proj.weight)] == 0.25
    assert lr_of[id(enc.embedding.weight)] == 0.125
    assert lr_of[id(net.heads[0].weight)] == 1.0


def test_architecture_conflict_is_refused(corpus: dict[str, Path], pretrained_run: Path) -> None:
    config = finetune_config(corpus["labelled"], pretrained_run)
    config["model"]["d_model"] = 32
    with pytest.raises(KilnError, match="model.d_model: 32 differs from the pre-trained model's 16"):
        kiln.train(config)


def test_not_a_pretraining_run(corpus: dict[str, Path], tmp_path: Path) -> None:
    with pytest.raises(KilnError, match="model.pretrained: .* is not a pre-training run"):
        kiln.train(finetune_config(corpus["labelled"], tmp_path / "nowhere"))


def test_sample_keeps_a_stratified_fraction(corpus: dict[str, Path]) -> None:
    base = finetune_config(corpus["labelled"], None)
    base["data"]["split"] = {"validation": 0.0, "test": 0.0}
    everything, _ = load_splits(load_supervised_config(base))
    base["data"]["sample"] = 0.25
    frames, report = load_splits(load_supervised_config(base))
    n = len(everything["train"])
    assert len(frames["train"]) == report["sampled_rows"] and abs(len(frames["train"]) - 0.25 * n) <= 1
    share = everything["train"]["label"].mean()
    assert abs(frames["train"]["label"].mean() - share) < 0.03, "stratified by label"
