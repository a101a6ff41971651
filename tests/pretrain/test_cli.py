"""`kiln pretrain` and `--set` from the command line, and their one-line errors."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from cli_helpers import one_line_error, run_cli

from .conftest import finetune_config, pretrain_config


def _write(path: Path, config: dict) -> Path:
    path.write_text(yaml.safe_dump(config), encoding="utf-8")
    return path


def test_pretrain_then_finetune_from_the_cli(corpus: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    config = _write(tmp_path / "pre.yaml", pretrain_config([str(corpus["unlabelled"])]))
    code, out, err = run_cli(capsys, monkeypatch, "pretrain", config, "-o", tmp_path / "pre", "-q",
                             "--set", "trainer.iterations=10", "--set", "trainer.eval_interval=5")
    assert code == 0, err
    assert "masked_accuracy" in out and (tmp_path / "pre" / "model" / "weights.safetensors").is_file()
    assert yaml.safe_load((tmp_path / "pre" / "config.yaml").read_text())["trainer"]["iterations"] == 10
    fine = _write(tmp_path / "fine.yaml", finetune_config(corpus["labelled"], None))
    code, out, err = run_cli(capsys, monkeypatch, "train", fine, "-o", tmp_path / "fine", "-q",
                             "--set", f"model.pretrained={tmp_path / 'pre'}",
                             "--set", "trainer.epochs=1", "--set", "data.sample=0.5")
    assert code == 0, err
    saved = yaml.safe_load((tmp_path / "fine" / "config.yaml").read_text())
    assert saved["model"]["pretrained"] == str(tmp_path / "pre") and saved["data"]["sample"] == 0.5


def test_cli_errors(corpus: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str],
                    monkeypatch: pytest.MonkeyPatch) -> None:
    run = lambda *a: run_cli(capsys, monkeypatch, *a)  # noqa: E731
    fine = _write(tmp_path / "fine.yaml", finetune_config(corpus["labelled"], None))
    one_line_error(run("pretrain", fine), "kiln pretrain takes a `task: pretraining` config")
    one_line_error(run("train", fine, "--set", "trainer.epochs"), "--set expects KEY=VALUE")
    one_line_error(run("train", fine, "--set", "model.pretrained=" + str(tmp_path / "none")),
                   "model.pretrained:", "is not a pre-training run")
    bad = pretrain_config([str(corpus["unlabelled"])])
    bad["objective"] = {"mask_fraction": 1.5}
    one_line_error(run("pretrain", _write(tmp_path / "bad.yaml", bad)), "objective.mask_fraction")
    missing = pretrain_config([str(tmp_path / "nowhere.csv")])
    one_line_error(run("pretrain", _write(tmp_path / "missing.yaml", missing)), "nowhere.csv")
