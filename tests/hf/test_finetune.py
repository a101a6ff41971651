"""Model type `hf`, full fine-tuning: it learns, tokenizes with the checkpoint's tokenizer, saves and
loads to identical predictions (without the checkpoint), and trains through the CLI and the example."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
import yaml
from safetensors import safe_open

import kiln
from kiln.io import read_json


def probabilities(model: Any, data: Any) -> np.ndarray:
    preds = model.predict(data)
    return preds[[c for c in preds.columns if "_probability_" in c]].to_numpy(dtype="float64")


@pytest.fixture(scope="module")
def full_run(hf_config, tmp_path_factory: pytest.TempPathFactory) -> tuple[Any, Path]:
    run = tmp_path_factory.mktemp("full") / "run"
    config = hf_config(pooling="cls", dropout=0.0, trainer={"epochs": 8, "learning_rate": 2e-3})
    return kiln.train(config, output=run), run


def test_finetune_loss_falls_and_learns(full_run) -> None:
    model, _ = full_run
    losses = [row["train_loss"] for row in model.history]
    assert losses[-1] < 0.5 * losses[0], losses
    assert model.metrics["test"]["accuracy"] >= 0.8, model.metrics["test"]


def test_text_is_tokenized_by_the_checkpoint(full_run, tiny_bert: Path) -> None:
    import transformers

    model, _ = full_run
    feature = model.preprocessor.inputs[0]
    assert (feature.config.tokenizer, feature.config.tokenizer_path) == ("pretrained", str(tiny_bert))
    texts = ["good movie", "the plot was very good and the cast was superb but the ending was dull at times"]
    reference = transformers.AutoTokenizer.from_pretrained(str(tiny_bert), local_files_only=True)
    expected = reference(texts, truncation=True, max_length=16, padding="max_length")["input_ids"]
    ids = feature.transform(pd.Series(texts))
    assert ids.tolist() == expected
    assert int(ids[1, -1]) == reference.sep_token_id  # truncated to max_length, [SEP] kept


def test_save_load_gives_identical_predictions(full_run, sentiment: Path, tmp_path: Path) -> None:
    model, _ = full_run
    saved = model.save(tmp_path / "saved")
    meta = read_json(saved / "model.json")
    assert "hf_architecture" in meta and "base_checkpoint" not in meta
    with safe_open(str(saved / "weights.safetensors"), "pt") as weights:
        assert any(".encoder.layer.1." in key for key in weights.keys())  # the full encoder is saved
    again = kiln.load(saved)
    assert np.array_equal(probabilities(again, sentiment), probabilities(model, sentiment))


def test_full_model_loads_without_its_checkpoint(hf_config, bert_copy: Path, sentiment: Path, tmp_path: Path) -> None:
    model = kiln.train(hf_config(checkpoint=bert_copy, trainer={"epochs": 1}), output=tmp_path / "run")
    expected = probabilities(model, sentiment)
    shutil.rmtree(bert_copy)
    assert np.array_equal(probabilities(kiln.load(tmp_path / "run"), sentiment), expected)


@pytest.mark.parametrize(("pooling", "output"), [("mean", "binary"), ("pooler", "numeric")])
def test_pooling_outputs_and_extra_inputs(hf_config, sentiment: Path, tmp_path: Path, pooling: str, output: str) -> None:
    """Regression and binary heads; a numeric input is concatenated with the pooled text vector."""
    frame = pd.read_csv(sentiment).assign(length=lambda f: f.sentence.str.len())
    config = hf_config(pooling=pooling, hidden=[16], trainer={"epochs": 2})
    config["input_features"].append({"name": "length", "type": "numeric"})
    config["output_features"] = [{"name": "label", "type": output}]
    model = kiln.train(config, data=frame, output=tmp_path / "run")
    assert ("r2" if output == "numeric" else "accuracy") in model.metrics["test"]
    assert len(kiln.load(tmp_path / "run").predict(frame.head(5))) == 5


def test_cli_train_predict_and_merge_refusal(cli, hf_config, sentiment: Path, tmp_path: Path) -> None:
    config = tmp_path / "bert.yaml"
    config.write_text(yaml.safe_dump(hf_config(trainer={"epochs": 2})), encoding="utf-8")
    code, out, err = cli("train", config, "-q", "-o", tmp_path / "run")
    assert code == 0 and err == "", err
    assert "accuracy" in out
    code, _, err = cli("predict", tmp_path / "run", sentiment, "-o", tmp_path / "preds.csv")
    assert code == 0, err
    assert len(pd.read_csv(tmp_path / "preds.csv")) == 200
    code, _, err = cli("merge-adapter", tmp_path / "run", "--output", tmp_path / "merged")
    assert code == 2 and err.startswith("error: ") and len(err.strip().splitlines()) == 1, err
    assert "no LoRA adapter to merge" in err


def test_example_config_on_an_sst2_slice(cli, example_on_sst2_slice, tiny_bert: Path, tmp_path: Path) -> None:
    """examples/bert_finetune.yaml as written (lr 2e-5, warm-up, [CLS] head), 1 epoch on 200 SST-2 rows."""
    _, config, data = example_on_sst2_slice("bert_finetune", epochs=1)
    code, _, err = cli("train", config, "--data", data, "-q", "-o", tmp_path / "run")
    assert code == 0, err
    saved = read_json(tmp_path / "run" / "model" / "model.json")["config"]
    assert saved["model"]["path"] == str(tiny_bert) and saved["trainer"]["learning_rate"] == 2e-5
    assert read_json(tmp_path / "run" / "data_report.json")["rows"]["test"] == 872


def test_bf16_and_accumulation_reach_hf_fine_tuning(hf_config, tmp_path: Path) -> None:
    """The shared trainer options apply to a Hugging Face checkpoint too; a killed run resumes exactly."""
    config = hf_config(trainer={"epochs": 2, "precision": "bf16", "gradient_accumulation": 2})
    full = kiln.train(config, output=tmp_path / "full")
    assert all(np.isfinite(row["train_loss"]) for row in full.history)

    def kill(trainer: Any, row: dict[str, Any]) -> None:
        if row["epoch"] == 1:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        kiln.train(config, output=tmp_path / "killed", callbacks=[kill])
    resumed = kiln.train(config, resume=tmp_path / "killed")
    for key, value in full.net.state_dict().items():
        assert np.array_equal(value.float().numpy(), resumed.net.state_dict()[key].float().numpy()), key
