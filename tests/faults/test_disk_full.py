"""A full disk during every kind of write kiln makes: one line naming the file, exit 2, and what was
there before is intact (writes go to a temp file renamed into place; the rename never happens)."""

from __future__ import annotations

import errno
import json
import os
import shutil

import pytest
import yaml
from cli_helpers import one_line_error, run_cli

import kiln
import kiln.io
from kiln.serve.versions import ModelStore

REAL_REPLACE = os.replace


def disk_full_for(monkeypatch, suffix: str) -> None:
    """Every atomic write whose target ends in `suffix` fails with ENOSPC (the temp file is removed)."""

    def replace(src, dst, *args, **kwargs):
        if str(dst).endswith(suffix):
            raise OSError(errno.ENOSPC, "No space left on device")
        return REAL_REPLACE(src, dst, *args, **kwargs)

    monkeypatch.setattr(kiln.io.os, "replace", replace)


@pytest.fixture
def config_file(tmp_path, tabular_config):
    path = tmp_path / "c.yaml"
    path.write_text(yaml.safe_dump(tabular_config(epochs=2)))
    return path


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    import pandas as pd

    root = tmp_path_factory.mktemp("disk-full")
    pd.DataFrame({"x": [0.1 * i for i in range(60)], "color": ["red", "blue", "green"] * 20, "flag": ["yes", "no"] * 30,
                  "y": [i % 2 for i in range(60)]}).to_csv(root / "t.csv", index=False)
    config = {"data": {"train": str(root / "t.csv")}, "input_features": [{"name": "x", "type": "numeric"}, {"name": "color", "type": "category"}],
              "output_features": [{"name": "y", "type": "binary"}], "model": {"type": "mlp", "hidden": [4]}, "trainer": {"epochs": 1}}
    return kiln.train(config, output=root / "trained").run_dir


@pytest.mark.parametrize("target", ["weights.safetensors", "model.json", "config.yaml", "metrics.json", "history.csv", "report.html"])
def test_training_writes(tmp_path, config_file, capsys, monkeypatch, target):
    disk_full_for(monkeypatch, target)
    one_line_error(run_cli(capsys, monkeypatch, "train", config_file, "-o", tmp_path / "run", "-q"), "No space left on device")
    assert not [p for p in (tmp_path / "run").rglob(".*") if p.is_file()]  # no temp file left behind


@pytest.mark.parametrize(("command", "target"), [("predict", "preds.csv"), ("evaluate", "metrics-out.json")])
def test_output_files_keep_their_old_content(tmp_path, trained, tabular, capsys, monkeypatch, command, target):
    out = tmp_path / target
    out.write_text("old\n")
    disk_full_for(monkeypatch, target)
    one_line_error(run_cli(capsys, monkeypatch, command, trained, tabular, "-o", out), "No space left on device", target)
    assert out.read_text() == "old\n"


def test_key_file_keeps_its_keys(tmp_path, capsys, monkeypatch):
    keys = tmp_path / "keys.json"
    run_cli(capsys, monkeypatch, "keys", "add", "a", "--models", "*", "--file", keys)
    before = keys.read_text()
    disk_full_for(monkeypatch, "keys.json")
    one_line_error(run_cli(capsys, monkeypatch, "keys", "add", "b", "--models", "*", "--file", keys), "No space left on device")
    assert keys.read_text() == before and len(json.loads(before)["keys"]) == 1


def test_registry_push_leaves_the_index_unchanged(tmp_path, trained, capsys, monkeypatch):
    store = ModelStore(tmp_path / "reg")
    store.push(trained, "m")

    def full(*args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(shutil, "copytree", full)
    one_line_error(run_cli(capsys, monkeypatch, "registry", "push", trained, "--name", "m", "--registry", store.root),
                   "No space left on device")
    assert [v.version for v in store.versions("m")] == [1]
    assert not [p for p in (store.root / "models" / "m").iterdir() if p.name.startswith(".push-")]
