"""benchmarks/compare/run.py: the harness runs kiln in a fresh process, parses its result, and records a peer
that is not installed (or fails) as a row with its error while the rest still runs. No timing is checked."""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path

import pandas as pd
import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture()
def harness(monkeypatch: pytest.MonkeyPatch, tmp_path: Path):  # noqa: ANN201
    spec = importlib.util.spec_from_file_location("compare_run", ROOT / "benchmarks" / "compare" / "run.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    monkeypatch.setattr(module, "VENVS", tmp_path / "venvs")  # no peer is installed here
    monkeypatch.syspath_prepend(str(module.WORKERS))
    return module


def test_missing_peer_is_a_row_with_its_error_and_kiln_still_runs(harness, tmp_path: Path) -> None:
    out = tmp_path / "compare.json"
    harness.main(["--tasks", "digits", "--quick", "--seeds", "0", "--systems", "keras", "--set", "digits:trainer.epochs=1",
                  "--work", str(tmp_path / "work"), "--output", str(out), "--markdown", str(tmp_path / "compare.md")])
    result = json.loads(out.read_text())
    systems = result["tasks"]["digits"]["systems"]
    assert systems["kiln"]["status"] == "ok"
    assert 0.0 <= systems["kiln"]["metric"]["mean"] <= 1.0 and systems["kiln"]["ttfo_s"]["mean"] > 0
    assert systems["keras"]["status"] == "not run" and "setup.sh keras" in systems["keras"]["error"]
    table = (tmp_path / "compare.md").read_text()
    assert "| digits (quick) | kiln | accuracy" in table and "setup.sh keras" in table


def test_a_failing_worker_is_recorded_with_its_last_error_line(harness, tmp_path: Path) -> None:
    row = harness.run_worker(Path(sys.executable), "kiln_worker.py", "digits", 0, tmp_path, {"kiln_config": {"data": {}}},
                             60, tmp_path / "log.txt")
    assert row["status"] == "failed" and row["error"].startswith("exit ")
    summary = harness.summarise([row], "accuracy")
    assert summary["status"] == "failed" and summary["error"] == row["error"]


def test_a_peer_whose_install_failed_says_why(harness) -> None:
    env = harness.VENVS / "ludwig"
    env.mkdir(parents=True)
    (env / "status.json").write_text(json.dumps({"ok": False, "error": "ERROR: No matching distribution found for ludwig"}))
    python, why = harness.python_of("ludwig")
    assert python is None and why == "not installable: ERROR: No matching distribution found for ludwig"


def test_peers_take_kilns_learning_rate_only_when_kiln_uses_adam(harness) -> None:
    import common

    assert common.learning_rate({"trainer": {"optimizer": "adamw", "learning_rate": 0.002}}) == 0.002
    # kiln's SGD step size (0.1 in the n-gram configs) would make the peers' Adam diverge
    assert common.learning_rate({"trainer": {"optimizer": "sgd", "learning_rate": 0.1}}) == common.PEER_DEFAULT_LR


def test_prepare_writes_a_shared_column_once(tmp_path: Path) -> None:
    spec = importlib.util.spec_from_file_location("compare_prepare", ROOT / "benchmarks" / "compare" / "prepare.py")
    prepare = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(prepare)
    rows = [{"sentence": f"{w} movie number {i}", "label": int(w == "good")} for i, w in enumerate(["good", "bad"] * 30)]
    pd.DataFrame(rows).to_csv(tmp_path / "data.csv", index=False)
    config = {"data": {"train": str(tmp_path / "data.csv"), "split": {"validation": 0.2, "test": 0.2}},
              "input_features": [{"name": "sentence", "type": "text", "max_length": 8},
                                 {"name": "bag", "column": "sentence", "type": "text", "encoder": "ngram"}],
              "output_features": [{"name": "label", "type": "binary"}], "model": {"type": "cnn"}}
    prepare.main(["--config", json.dumps(config), "--work", str(tmp_path / "work")])
    meta = json.loads((tmp_path / "work" / "meta.json").read_text())
    assert meta["inputs"] == {"sentence": "text"} and meta["text"]["sentence"]["name"] == "sentence"  # the peers read it once
    assert list(pd.read_csv(tmp_path / "work" / "train.csv").columns) == ["sentence", "label"]
