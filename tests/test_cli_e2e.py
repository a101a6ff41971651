"""The CLI end to end on small slices of the shared real datasets."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest
import yaml
from typer.testing import CliRunner

from kiln.cli import app
from kiln.data import read_table

runner = CliRunner()


def _invoke(*args: str) -> str:
    result = runner.invoke(app, list(args), catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return result.output


def _slice(src: Path, dest: Path, rows: int, sep: str = ",") -> Path:
    frame = read_table(src)
    frame.sample(n=min(rows, len(frame)), random_state=0).to_csv(dest, sep=sep, index=False, quoting=3 if sep == "\t" else 0)
    return dest


def _write(path: Path, config: dict) -> Path:
    path.write_text(yaml.safe_dump(config))
    return path


def test_titanic_train_evaluate_predict(data_dir, tmp_path):
    config = _write(tmp_path / "titanic.yaml", {
        "data": {"train": str(data_dir / "titanic" / "train.csv"), "split": {"validation": 0.1, "test": 0.2, "seed": 42}},
        "preprocessing": {"outliers": {"clip_quantiles": [0.001, 0.999]}},
        "input_features": [
            {"name": "Pclass", "type": "category"}, {"name": "Sex", "type": "binary"},
            {"name": "Age", "type": "numeric", "normalization": "zscore"}, {"name": "Fare", "type": "numeric"},
            {"name": "Name", "type": "text", "tokenizer": "word", "max_length": 16},
        ],
        "output_features": [{"name": "Survived", "type": "binary"}],
        "model": {"type": "mlp", "hidden": [32], "init": "xavier"},
        "trainer": {"epochs": 5, "batch_size": 64, "learning_rate": 0.01},
    })
    run = tmp_path / "run"
    output = _invoke("train", str(config), "--output", str(run), "--quiet")
    assert "accuracy" in output and "report.html" in output
    metrics = json.loads((run / "metrics.json").read_text())
    assert metrics["test"]["accuracy"] > 0.7
    report = json.loads((run / "data_report.json").read_text())
    assert report["train_file"]["missing_values"]["Age"] == 177  # reported, then imputed

    _invoke("evaluate", str(run), str(data_dir / "titanic" / "train.csv"), "--output", str(tmp_path / "eval.json"))
    assert json.loads((tmp_path / "eval.json").read_text())["accuracy"] > 0.7
    _invoke("predict", str(run / "model"), str(data_dir / "titanic" / "train.csv"), "--output", str(tmp_path / "p.csv"))
    preds = pd.read_csv(tmp_path / "p.csv")
    assert len(preds) == 891 and {"Survived_prediction", "Survived_probability_1"} <= set(preds.columns)


@pytest.mark.parametrize("model", [
    {"type": "rnn", "cell": "lstm", "embedding_dim": 16, "rnn_hidden": [16, 8], "hidden": [8]},
    {"type": "rnn", "cell": "gru", "bidirectional": True, "embedding_dim": 16, "rnn_hidden": [16]},
    {"type": "transformer", "d_model": 16, "heads": 2, "layers": 1},
])
def test_sst2_text_models(data_dir, tmp_path, model):
    train = _slice(data_dir / "sst2" / "train.tsv", tmp_path / "train.tsv", 600, "\t")
    config = _write(tmp_path / "sst2.yaml", {
        "data": {"train": str(train), "test": str(data_dir / "sst2" / "dev.tsv"), "split": {"validation": 0.1}},
        "input_features": [{"name": "sentence", "type": "text", "vocab_size": 2000, "max_length": 40}],
        "output_features": [{"name": "label", "type": "category"}],
        "model": model,
        "trainer": {"epochs": 2, "batch_size": 32},
    })
    _invoke("train", str(config), "--output", str(tmp_path / "run"), "-q")
    metrics = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert sum(metrics["test"]["per_class"][c]["support"] for c in ("0", "1")) == 872  # the whole dev file


def test_sms_spam_char_tokens_and_cv(data_dir, tmp_path):
    data = _slice(data_dir / "sms_spam" / "sms_spam.tsv", tmp_path / "sms.tsv", 500, "\t")
    config = _write(tmp_path / "sms.yaml", {
        "data": {"train": str(data)},
        "input_features": [{"name": "text", "type": "text", "tokenizer": "char", "max_length": 80, "vocab_size": 100}],
        "output_features": [{"name": "label", "type": "binary", "positive": "spam"}],
        "model": {"type": "mlp", "hidden": [16]},
        "trainer": {"epochs": 2},
    })
    output = _invoke("cv", str(config), "--folds", "3", "--output", str(tmp_path / "cv.json"))
    assert "±" in output
    result = json.loads((tmp_path / "cv.json").read_text())
    assert len(result["metrics"]["f1"]["per_fold"]) == 3


def test_digits_cnn(tmp_path):
    config = _write(tmp_path / "cnn.yaml", {
        "data": {"train": "sklearn:digits"},
        "input_features": [{"name": "image", "type": "image", "augmentation": {"rotate": 10, "crop": 1}}],
        "output_features": [{"name": "label", "type": "category"}],
        "model": {"type": "cnn", "channels": [8], "hidden": [32]},
        "trainer": {"epochs": 2, "batch_size": 64, "learning_rate": 0.01},
    })
    _invoke("train", str(config), "--output", str(tmp_path / "run"), "-q")
    assert json.loads((tmp_path / "run" / "metrics.json").read_text())["test"]["accuracy"] > 0.6


def test_killed_process_resumes_to_the_uninterrupted_result(tabular, tmp_path):
    config = _write(tmp_path / "c.yaml", {
        "data": {"train": str(tabular)},
        "input_features": [{"name": "x", "type": "numeric"}, {"name": "color", "type": "category"}],
        "output_features": [{"name": "y", "type": "binary"}],
        "model": {"type": "mlp", "hidden": [64, 64], "dropout": 0.2},
        "trainer": {"epochs": 10, "batch_size": 1, "checkpoint_interval_s": 0},  # a checkpoint after every epoch: killed mid-run
    })
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    cmd = [sys.executable, "-c", "from kiln.cli import main; main()", "train", str(config), "-q", "--output"]
    killed = tmp_path / "killed"
    proc = subprocess.Popen([*cmd, str(killed)], env=env)
    checkpoint = killed / "checkpoint" / "checkpoint.safetensors"
    deadline = time.time() + 120
    while not checkpoint.exists() and time.time() < deadline and proc.poll() is None:
        time.sleep(0.01)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert checkpoint.exists() and not (killed / "metrics.json").exists()
    subprocess.run([*cmd[:-1], "--resume", str(killed)], env=env, check=True)
    import kiln

    kiln.train(config, output=tmp_path / "full")
    resumed = json.loads((killed / "metrics.json").read_text())
    full = json.loads((tmp_path / "full" / "metrics.json").read_text())
    assert resumed == full
