"""Data parallelism (`backend: torchrun`): the same weights as one process, rank-0-only writes, resume
after kill -9, one-line errors."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
import yaml

import kiln
from kiln.errors import KilnError
from kiln.training.distributed import BackendConfig, shard_rows


def table(path: Path, rows: int = 203) -> Path:
    """A small numeric + category table; 203 rows so the last batch does not split evenly."""
    rng = np.random.default_rng(0)
    x = rng.normal(size=(rows, 3))
    frame = pd.DataFrame({"a": x[:, 0], "b": x[:, 1], "c": rng.choice(["p", "q", "r"], rows),
                          "y": np.where(x[:, 0] + 0.5 * x[:, 1] > 0, "yes", "no")})
    frame.to_csv(path, index=False)
    return path


def config(data: Path, backend: dict | None = None, epochs: int = 3, **trainer: object) -> dict:
    cfg = {
        "data": {"train": str(data), "split": {"validation": 0.2, "test": 0.1}},
        "input_features": [{"name": "a", "type": "numeric"}, {"name": "b", "type": "numeric"},
                           {"name": "c", "type": "category"}],
        "output_features": [{"name": "y", "type": "binary"}],
        "model": {"type": "mlp", "hidden": [16], "dropout": 0.0},
        "trainer": {"epochs": epochs, "batch_size": 20, "learning_rate": 0.01, "seed": 3, **trainer},
    }
    if backend:
        cfg["backend"] = backend
    return cfg


def weights(run_dir: Path) -> dict[str, torch.Tensor]:
    from safetensors.torch import load_file

    return load_file(str(run_dir / "model" / "weights.safetensors"))


def test_shard_rows_is_identity_in_one_process() -> None:
    rows = torch.arange(7)
    mine, scale = shard_rows(rows)
    assert mine.tolist() == rows.tolist() and scale == 1.0


def test_two_workers_match_one_process(tmp_path: Path) -> None:
    data = table(tmp_path / "t.csv")
    one = kiln.train(config(data, gradient_accumulation=2), output=tmp_path / "one")
    two = kiln.train(config(data, {"type": "torchrun", "workers": 2}, gradient_accumulation=2), output=tmp_path / "two")
    w1, w2 = weights(tmp_path / "one"), weights(tmp_path / "two")
    assert w1.keys() == w2.keys()
    for name in w1:
        assert torch.allclose(w1[name], w2[name], atol=1e-5, rtol=0), name
    assert two.metrics["test"]["loss"] == pytest.approx(one.metrics["test"]["loss"], abs=1e-5)
    h1, h2 = one.history, two.history
    assert [r["train_loss"] for r in h2] == pytest.approx([r["train_loss"] for r in h1], abs=1e-5)
    assert [r["train_accuracy"] for r in h2] == pytest.approx([r["train_accuracy"] for r in h1], abs=1e-9)
    report = yaml.safe_load((tmp_path / "two" / "data_report.json").read_text())
    assert report["backend"] == {"type": "torchrun", "workers": 2}


def _checkpoint_round(run_dir: Path) -> int:
    from kiln.training.checkpoint import read_checkpoint

    try:
        return int(read_checkpoint(run_dir / "checkpoint")["round"])
    except KilnError:
        return 0


def test_kill_minus_9_then_resume_finishes(tmp_path: Path) -> None:
    data = table(tmp_path / "t.csv", rows=2000)
    cfg_path = tmp_path / "cfg.yaml"
    cfg_path.write_text(yaml.safe_dump(config(data, {"type": "torchrun", "workers": 2}, epochs=20, batch_size=16)))
    run_dir = tmp_path / "run"
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.Popen([sys.executable, "-m", "kiln", "train", str(cfg_path), "-o", str(run_dir), "-q"],
                            env=env, start_new_session=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.time() + 120
    while _checkpoint_round(run_dir) < 1 and time.time() < deadline and proc.poll() is None:
        time.sleep(0.2)
    assert proc.poll() is None, proc.stderr.read().decode() if proc.stderr else ""
    os.killpg(proc.pid, signal.SIGKILL)  # the driver and both workers
    proc.wait()
    done = _checkpoint_round(run_dir)
    assert 1 <= done < 20
    model = kiln.train(yaml.safe_load(cfg_path.read_text()), resume=run_dir)
    assert len(model.history) == 20 and model.history[0]["epoch"] == 1
    assert _checkpoint_round(run_dir) == 20


def test_worker_error_is_one_line(tmp_path: Path) -> None:
    data = table(tmp_path / "t.csv")
    cfg = config(data, {"type": "torchrun", "workers": 2})
    cfg["input_features"][0]["name"] = "missing_column"
    with pytest.raises(KilnError, match="missing_column") as info:
        kiln.train(cfg, output=tmp_path / "bad")
    assert "\n" not in str(info.value)


def test_backend_config_rejects_unknown_type() -> None:
    with pytest.raises(ValueError):
        BackendConfig(type="mpi")  # type: ignore[arg-type]
