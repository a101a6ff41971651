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

from dp_helpers import config, table, weights


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


def _parquet(path: Path, rows: int = 400) -> Path:
    """dp_helpers' table as Parquet in row groups of 50, with an `id` column for the hash split."""
    frame = pd.read_csv(table(path.with_suffix(".csv"), rows=rows))
    frame.insert(0, "id", range(rows))
    frame.to_parquet(path, row_group_size=50)
    return path


def _streamed(data: Path, backend: dict | None = None, **trainer: object) -> dict:
    cfg = config(data, backend, **trainer)
    cfg["data"].update(streaming=True, chunk_rows=32, shuffle_buffer=64, split={"validation": 0.2, "test": 0.1, "key": "id"})
    return cfg


def test_two_workers_stream_half_the_rows_each(tmp_path: Path) -> None:
    """Each worker reads its half of the file every epoch; the workers end with equal weights, and
    validation and test metrics cover every row once (the same rows as one process)."""
    data = _parquet(tmp_path / "t.parquet")
    one = kiln.train(_streamed(data), output=tmp_path / "one")
    two = kiln.train(_streamed(data, {"type": "torchrun", "workers": 2}), output=tmp_path / "two")
    report = yaml.safe_load((tmp_path / "two" / "data_report.json").read_text())
    reads = report["rows_read_per_worker"]
    assert [r["train"] for r in reads] == [3 * 200, 3 * 200]  # 3 epochs of half the 400 rows
    assert [r["validation"] for r in reads] == [4 * 200, 4 * 200]  # each epoch, then the final metrics
    assert [r["test"] for r in reads] == [200, 200]
    assert reads[0]["fit"] == 400 and "fit" not in reads[1]  # rank 0 fits the preprocessing and sends it
    shares = report["train_rows_per_worker"]
    assert sum(shares) == report["train_rows"] == yaml.safe_load((tmp_path / "one" / "data_report.json").read_text())["train_rows"]
    assert min(shares) > 0.4 * sum(shares)
    digests = report["weights_sha256_per_worker"]
    assert len(digests) == 2 and digests[0] == digests[1]
    for split in ("validation", "test"):
        assert np.sum(two.metrics[split]["confusion_matrix"]) == np.sum(one.metrics[split]["confusion_matrix"])
    assert len(two.history) == 3 and two.metrics["test"]["accuracy"] > 0.8


def _checkpoint_round(run_dir: Path) -> int:
    from kiln.training.checkpoint import read_checkpoint

    try:
        return int(read_checkpoint(run_dir / "checkpoint")["round"])
    except KilnError:
        return 0


@pytest.mark.slow  # ~45 s each: two launches of 2 workers (make test-slow)
@pytest.mark.parametrize("streamed", [False, True])
def test_kill_minus_9_then_resume_finishes(tmp_path: Path, streamed: bool) -> None:
    backend = {"type": "torchrun", "workers": 2}
    cfg = _streamed(_parquet(tmp_path / "t.parquet", rows=800), backend, epochs=12, batch_size=8) if streamed \
        else config(table(tmp_path / "t.csv", rows=800), backend, epochs=12, batch_size=8)
    cfg_path = tmp_path / "cfg.yaml"
    cfg_path.write_text(yaml.safe_dump(cfg))
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
    assert 1 <= done < 12
    model = kiln.train(yaml.safe_load(cfg_path.read_text()), resume=run_dir)
    assert len(model.history) == 12 and model.history[0]["epoch"] == 1
    assert _checkpoint_round(run_dir) == 12
    if streamed:  # the resumed epochs: each worker read its half (400 of the 800 rows) per epoch
        reads = yaml.safe_load((run_dir / "data_report.json").read_text())["rows_read_per_worker"]
        assert reads[0]["train"] == reads[1]["train"] == 400 * (12 - done)


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


def test_missing_ray_is_one_line_cli_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                           capsys: pytest.CaptureFixture[str]) -> None:
    from cli_helpers import one_line_error, run_cli

    monkeypatch.setitem(sys.modules, "ray", None)  # import ray raises ImportError
    cfg = tmp_path / "cfg.yaml"
    cfg.write_text(yaml.safe_dump(config(table(tmp_path / "t.csv"), {"type": "ray", "workers": 2})))
    one_line_error(run_cli(capsys, monkeypatch, "train", cfg, "-o", tmp_path / "run"), "needs Ray", "pip install 'kiln[ray]'")
