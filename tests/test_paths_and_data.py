"""Output paths that cannot be written, a full disk, and hostile table cells: one line, data intact."""

from __future__ import annotations

import errno
import json

import pandas as pd
import pytest
import yaml
from cli_helpers import one_line_error, run_cli

import kiln.io
from kiln.training.checkpoint import CHECKPOINT


@pytest.fixture
def config_file(tmp_path, tabular_config):
    path = tmp_path / "c.yaml"
    path.write_text(yaml.safe_dump(tabular_config(epochs=3)))
    return path


@pytest.mark.parametrize(("output", "fact"), [("afile/run", "afile is a file, not a directory"), ("/dev/null/x", "/dev/null is a file"),
                                               ("afile", "afile is a file, not a directory")])
def test_train_output_that_cannot_be_a_directory(tmp_path, config_file, capsys, monkeypatch, output, fact):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "afile").write_text("keep me")
    one_line_error(run_cli(capsys, monkeypatch, "train", config_file, "-o", output, "-q"), fact)
    assert (tmp_path / "afile").read_text() == "keep me"


def fill_disk_after(monkeypatch, calls: int) -> None:
    """Every safetensors write after the first `calls` writes half a file, then fails with ENOSPC."""
    real, seen = kiln.io.save_file, {"n": 0}

    def save_file(tensors, filename, metadata=None):
        seen["n"] += 1
        if seen["n"] > calls:
            with open(filename, "wb") as handle:
                handle.write(b"\0" * 100)
            raise OSError(errno.ENOSPC, "No space left on device")
        return real(tensors, filename, metadata=metadata)

    monkeypatch.setattr(kiln.io, "save_file", save_file)


def test_disk_full_mid_run_keeps_the_last_checkpoint_and_resume_finishes(tmp_path, config_file, capsys, monkeypatch):
    run = tmp_path / "run"
    fill_disk_after(monkeypatch, 2)  # the initial model and the epoch-1 checkpoint are written; epoch 2 fails
    every_epoch = ("--set", "trainer.checkpoint_interval_s=0")  # a checkpoint after each epoch, as the counts above assume
    one_line_error(run_cli(capsys, monkeypatch, "train", config_file, "-o", run, "-q", *every_epoch), "No space left on device", CHECKPOINT)
    saved = kiln.io.load_state(run / "checkpoint" / CHECKPOINT)  # still the complete epoch-1 checkpoint
    assert saved is not None
    assert not [p for p in (run / "checkpoint").iterdir() if p.name.startswith(".")]  # no temp file left behind
    monkeypatch.undo()
    code, _, err = run_cli(capsys, monkeypatch, "train", config_file, "--resume", run, "-q", *every_epoch)
    assert code == 0, err


def test_disk_full_while_writing_predictions_keeps_the_old_file(tmp_path, tabular, trained_run, capsys, monkeypatch):
    model = trained_run
    preds = tmp_path / "preds.csv"
    preds.write_text("old predictions\n")

    def full(*args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(pd.DataFrame, "to_csv", lambda self, *a, **k: "x" * 10)
    monkeypatch.setattr(kiln.io.Path, "write_text", full)
    one_line_error(run_cli(capsys, monkeypatch, "predict", model, tabular, "-o", preds), "No space left on device", "preds.csv")
    monkeypatch.undo()
    assert preds.read_text() == "old predictions\n"


@pytest.fixture(scope="module")
def trained_run(tmp_path_factory):
    import kiln

    root = tmp_path_factory.mktemp("paths")
    pd.DataFrame({"x": [0.1 * i for i in range(60)], "color": ["red", "blue", "green"] * 20, "flag": ["yes", "no"] * 30,
                  "y": [i % 2 for i in range(60)]}).to_csv(root / "t.csv", index=False)
    config = {"data": {"train": str(root / "t.csv")}, "input_features": [{"name": "x", "type": "numeric"}, {"name": "color", "type": "category"}],
              "output_features": [{"name": "y", "type": "binary"}], "model": {"type": "mlp", "hidden": [4]}, "trainer": {"epochs": 1}}
    return kiln.train(config, output=root / "model_run").run_dir


@pytest.mark.parametrize("output", ["afile/p.csv", "/dev/null/x", "adir"])
def test_predict_output_paths(tmp_path, tabular, trained_run, capsys, monkeypatch, output):
    model = trained_run
    monkeypatch.chdir(tmp_path)
    (tmp_path / "afile").write_text("x")
    (tmp_path / "adir").mkdir()
    one_line_error(run_cli(capsys, monkeypatch, "predict", model, tabular, "-o", output), "cannot write")


@pytest.mark.parametrize("value", [float("inf"), float("-inf"), "1e308"])
def test_non_finite_numbers_name_the_column(tmp_path, tabular, config_file, capsys, monkeypatch, value):
    frame = pd.read_csv(tabular).astype({"x": object})
    frame.loc[5, "x"] = value
    frame.to_csv(tmp_path / "bad.csv", index=False)
    one_line_error(run_cli(capsys, monkeypatch, "train", config_file, "--data", tmp_path / "bad.csv", "-o", tmp_path / "r", "-q"),
                   "column 'x'", "non-finite", "row 5")


def test_a_jsonl_cell_holding_an_object(tmp_path, tabular, config_file, capsys, monkeypatch):
    rows = pd.read_csv(tabular).to_dict("records")
    rows[2]["color"] = {"nested": [1, 2]}
    (tmp_path / "bad.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    one_line_error(run_cli(capsys, monkeypatch, "train", config_file, "--data", tmp_path / "bad.jsonl", "-o", tmp_path / "r", "-q"),
                   "column 'color'", "nested value (dict)", "row 2")
