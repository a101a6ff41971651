"""The cached frozen-encoder path (`trainer.freeze: [encoder]` on model type hf): the encoder runs once
per row, its cached vectors give the logits the live encoder gives, its weights stay untouched and out
of the saved model, and the saved model predicts from raw text like any hf model."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
import torch
from safetensors import safe_open

import kiln
from kiln.data.preprocessor import TensorData
from kiln.errors import KilnError
from kiln.hf.encoder import HFTextEncoder
from kiln.io import read_json
from kiln.models.cached import on_cached
from kiln.models.hf import _encoder
from kiln.supervised.artifact import predict_logits

FROZEN = {"freeze": ["encoder"], "epochs": 4, "learning_rate": 1e-2}


def frozen_config(hf_config, checkpoint: Path | None = None, model: dict[str, Any] | None = None, **trainer: Any) -> dict[str, Any]:
    return hf_config(checkpoint, trainer={**FROZEN, **trainer}, **{"pooling": "mean", "dropout": 0.1, "hidden": [16], **(model or {})})


class RowCounter:
    """Counts the rows HFTextEncoder.pool sees (every pass through the encoder goes through pool)."""

    def __init__(self) -> None:
        self.rows = 0

    def __call__(self, original: Any) -> Any:
        def pool(encoder: HFTextEncoder, x: torch.Tensor) -> torch.Tensor:
            self.rows += len(x)
            return original(encoder, x)

        return pool


@pytest.fixture
def counter(monkeypatch: pytest.MonkeyPatch) -> Iterator[RowCounter]:
    count = RowCounter()
    monkeypatch.setattr(HFTextEncoder, "pool", count(HFTextEncoder.pool))
    yield count


@pytest.fixture(scope="module")
def frozen_run(hf_config, tmp_path_factory: pytest.TempPathFactory) -> tuple[Any, Path, int]:
    run = tmp_path_factory.mktemp("frozen") / "run"
    count = RowCounter()
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(HFTextEncoder, "pool", count(HFTextEncoder.pool))
        model = kiln.train(frozen_config(hf_config), output=run)
    return model, run, count.rows


def test_encoder_runs_once_per_row(frozen_run) -> None:
    model, run, rows_encoded = frozen_run
    report = read_json(run / "data_report.json")
    assert len(model.history) == 4 and "validation_loss" in model.history[-1]
    assert rows_encoded == sum(report["rows"].values()) == report["frozen_encoder"]["rows"]
    assert report["frozen_encoder"]["source"] == "encoded"
    assert (run / "model" / "stats.json").is_file()  # drift statistics came from the cached vectors


def test_head_learns_on_cached_vectors(frozen_run) -> None:
    model, _, _ = frozen_run
    assert model.history[-1]["train_loss"] < model.history[0]["train_loss"]
    assert model.metrics["test"]["accuracy"] > 0.5


def test_cached_vectors_give_the_live_logits(frozen_run, sentiment: Path) -> None:
    """Same weights → same logits (1e-5): the full network on token ids vs the training network on cached vectors."""
    model, _, _ = frozen_run
    data = model.preprocessor.transform(pd.read_csv(sentiment), targets=False)
    live = predict_logits(model.net, data, 64)["label"]
    encoder = _encoder(model.net)
    pooled = encoder.pool_rows(data.inputs["sentence"], 64)  # length-sorted batches, scattered back
    cached = predict_logits(on_cached(model.net, ["sentence"]), TensorData({"sentence": pooled}), 64)["label"]
    assert torch.allclose(live, cached, atol=1e-5), (live - cached).abs().max()
    model.net.eval()
    with torch.no_grad():
        assert torch.allclose(pooled[:5], encoder.pool(data.inputs["sentence"][:5]), atol=1e-5)


def test_encoder_weights_unchanged_and_not_saved(frozen_run, tiny_bert: Path) -> None:
    import transformers

    model, run, _ = frozen_run
    original = transformers.AutoModel.from_pretrained(str(tiny_bert), local_files_only=True).state_dict()
    after = _encoder(model.net).backbone.state_dict()
    assert set(after) == set(original) and all(torch.equal(after[k], original[k]) for k in original)
    with safe_open(str(run / "model" / "weights.safetensors"), "pt") as handle:
        keys = list(handle.keys())
    assert keys and all(k.startswith(("heads.", "trunk.")) for k in keys), keys
    meta = read_json(run / "model" / "model.json")
    assert "hf_architecture" not in meta and meta["base_checkpoint"]["path"] == str(tiny_bert)
    assert set(meta["base_checkpoint"]["sha256"]) == {"model.safetensors"}
    assert not list((run / "checkpoint").glob("**/*backbone*"))


def test_save_load_predict_round_trip(frozen_run, cli, sentiment: Path, tmp_path: Path) -> None:
    model, run, _ = frozen_run
    expected = model.predict(sentiment)
    again = kiln.load(run)
    pd.testing.assert_frame_equal(again.predict(sentiment), expected)
    saved = model.save(tmp_path / "saved")
    pd.testing.assert_frame_equal(kiln.load(saved).predict(sentiment), expected)
    code, _, err = cli("predict", run, sentiment, "-o", tmp_path / "preds.csv")
    assert code == 0, err
    assert len(pd.read_csv(tmp_path / "preds.csv")) == 200
    code, out, err = cli("evaluate", run, sentiment)
    assert code == 0 and "accuracy" in out, err


def test_changed_or_missing_base_is_refused(hf_config, new_checkpoint, bert_copy: Path, tmp_path: Path) -> None:
    kiln.train(frozen_config(hf_config, bert_copy, epochs=1), output=tmp_path / "run")
    new_checkpoint(bert_copy, seed=1)  # different weights at the same path
    with pytest.raises(KilnError, match="frozen-encoder model .* has changed: .*model.safetensors differ"):
        kiln.load(tmp_path / "run")
    for weights in bert_copy.glob("*.safetensors"):
        weights.unlink()
    with pytest.raises(KilnError, match="frozen-encoder model .* is missing"):
        kiln.load(tmp_path / "run")


def test_resume_reads_the_disk_cache(hf_config, counter: RowCounter, tmp_path: Path) -> None:
    config = frozen_config(hf_config, epochs=3)
    full = kiln.train(config, output=tmp_path / "full")

    def kill(trainer: Any, row: dict[str, Any]) -> None:
        if row["epoch"] == 1:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        kiln.train(config, output=tmp_path / "killed", callbacks=[kill])
    assert list((tmp_path / "killed" / "cache").glob("pooled-*.safetensors"))
    before = counter.rows
    resumed = kiln.train(config, resume=tmp_path / "killed")
    assert counter.rows == before  # nothing re-encoded
    assert read_json(tmp_path / "killed" / "data_report.json")["frozen_encoder"]["source"] == "disk"
    for key, value in full.net.state_dict().items():
        assert torch.equal(value, resumed.net.state_dict()[key]), key


def test_prepared_data_shares_the_cache(hf_config, counter: RowCounter, tmp_path: Path) -> None:
    """Configs sharing prepared data (e.g. tuning trials) encode once between them; no dropout, no trunk."""
    config = frozen_config(hf_config, model={"dropout": 0.0, "hidden": [], "pooling": "cls"}, epochs=1)
    prepared = kiln.supervised.task.prepare_data(config)
    first = kiln.train(config, data=prepared, output=tmp_path / "a")
    encoded = counter.rows
    second = kiln.train({**config, "trainer": {**config["trainer"], "learning_rate": 3e-3}}, data=prepared, output=tmp_path / "b")
    assert counter.rows == encoded > 0
    assert read_json(tmp_path / "b" / "data_report.json")["frozen_encoder"]["source"] == "memory"
    assert first.history != second.history


def test_cross_validation_uses_the_cache(hf_config, counter: RowCounter, sentiment: Path) -> None:
    result = kiln.cross_validate(frozen_config(hf_config, epochs=1), folds=2)
    assert len(result["metrics"]["accuracy"]["per_fold"]) == 2
    rows = len(pd.read_csv(sentiment).drop_duplicates())
    assert counter.rows == 2 * rows  # each fold encodes every row once (its training, validation and held-out rows)


def test_full_and_lora_still_train_the_encoder(hf_config, tmp_path: Path) -> None:
    model = kiln.train(hf_config(trainer={"epochs": 1}), output=tmp_path / "full")
    assert "hf_architecture" in read_json(tmp_path / "full" / "model" / "model.json")
    assert "frozen_encoder" not in read_json(tmp_path / "full" / "data_report.json")
    assert any(p.requires_grad for p in _encoder(model.net).backbone.parameters())


@pytest.mark.parametrize(("model", "trainer", "fact"), [
    ({"adapter": {"type": "lora"}}, {"freeze": ["encoder"]}, "remove one of trainer.freeze: [encoder] and model.adapter"),
    ({}, {"freeze": ["encoders"]}, "trainer.freeze"),
])
def test_bad_config_is_one_line(cli, hf_config, tmp_path: Path, model: dict[str, Any], trainer: dict[str, Any], fact: str) -> None:
    import yaml

    path = tmp_path / "c.yaml"
    path.write_text(yaml.safe_dump(hf_config(trainer=trainer, **model)), encoding="utf-8")
    code, _, err = cli("train", path, "-q", "-o", tmp_path / "run")
    lines = err.strip().splitlines()
    assert code == 2 and len(lines) == 1 and lines[0].startswith("error: ") and fact in lines[0], err



def test_example_config_on_an_sst2_slice(cli, example_on_sst2_slice, tmp_path: Path) -> None:
    """examples/bert_frozen.yaml as written, 2 epochs on 200 SST-2 rows: the cached path, then predict."""
    example, config, data = example_on_sst2_slice("bert_frozen", epochs=2)
    assert example["trainer"]["freeze"] == ["encoder"]
    code, _, err = cli("train", config, "--data", data, "-q", "-o", tmp_path / "run")
    assert code == 0, err
    report = read_json(tmp_path / "run" / "data_report.json")
    assert report["frozen_encoder"]["rows"] == sum(report["rows"].values()) and report["rows"]["test"] == 872
    code, _, err = cli("predict", tmp_path / "run", data, "-o", tmp_path / "preds.csv")
    assert code == 0, err
