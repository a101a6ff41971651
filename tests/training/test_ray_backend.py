"""`backend: ray`: Ray Train workers give the same weights as one process; one-line errors. The tests
share one local Ray instance (num_cpus=2) and skip when Ray is not installed."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import torch
import yaml

import kiln
from kiln.errors import KilnError
from dp_helpers import config, table, weights

ray = pytest.importorskip("ray", reason="Ray is an optional extra: pip install 'kiln[ray]'")


@pytest.fixture(scope="session")
def ray_cluster() -> Iterator[None]:
    if not ray.is_initialized():
        ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, configure_logging=False)
    yield
    ray.shutdown()


def test_ray_two_workers_match_one_process(tmp_path: Path, ray_cluster: None) -> None:
    data = table(tmp_path / "t.csv")
    kiln.train(config(data), output=tmp_path / "one")
    model = kiln.train(config(data, {"type": "ray", "workers": 2, "resources_per_worker": {"cpu": 1}}), output=tmp_path / "two")
    w1, w2 = weights(tmp_path / "one"), weights(tmp_path / "two")
    for name in w1:
        assert torch.allclose(w1[name], w2[name], atol=1e-5, rtol=0), name
    assert len(model.history) == 3


def test_ray_resources_that_cannot_be_met(tmp_path: Path, ray_cluster: None) -> None:
    cfg = config(table(tmp_path / "t.csv"), {"type": "ray", "workers": 2, "resources_per_worker": {"cpu": 1, "gpu": 1}})
    with pytest.raises(KilnError, match="cannot be met: GPU 2 needed, 0 in the cluster"):
        kiln.train(cfg, output=tmp_path / "run")


class _FakeRay:
    """Stands in for the ray module: not initialised, and ray.init fails as for an unreachable address."""

    @staticmethod
    def is_initialized() -> bool:
        return False

    @staticmethod
    def init(**_: object) -> None:
        raise ConnectionError("Could not find any running Ray instance. Please specify the one to connect to.")


def test_unreachable_address_is_one_line(monkeypatch: pytest.MonkeyPatch) -> None:
    from kiln.training import ray_backend
    from kiln.training.distributed import BackendConfig

    monkeypatch.setattr(ray_backend, "_import_ray", lambda: _FakeRay)
    with pytest.raises(KilnError, match=r"backend.address: cannot connect to Ray at 10.0.0.9:6379 \(Could not find") as info:
        ray_backend.connect(BackendConfig(type="ray", address="10.0.0.9:6379"))
    assert "\n" not in str(info.value)


def _checkpoint_round(run_dir: Path) -> int:
    from kiln.training.checkpoint import read_checkpoint

    try:
        return int(read_checkpoint(run_dir / "checkpoint")["round"])
    except KilnError:
        return 0


def _wait_for_round(run_dir: Path, alive: Callable[[], bool], timeout_s: float = 180) -> None:
    deadline = time.time() + timeout_s
    while _checkpoint_round(run_dir) < 1 and alive() and time.time() < deadline:
        time.sleep(0.2)


@pytest.mark.slow  # two Ray Train launches each (make test-slow)
def test_ray_driver_killed_then_resumed(tmp_path: Path, ray_cluster: None) -> None:
    """kill -9 of the driver (a `kiln train` process joined to the cluster) mid-run; --resume finishes it."""
    cfg = config(table(tmp_path / "t.csv", rows=800), {"type": "ray", "workers": 2, "resources_per_worker": {"cpu": 1},
                                                      "address": ray.get_runtime_context().gcs_address},
                 epochs=12, batch_size=8)
    path, run_dir = tmp_path / "cfg.yaml", tmp_path / "run"
    path.write_text(yaml.safe_dump(cfg))
    proc = subprocess.Popen([sys.executable, "-m", "kiln", "train", str(path), "-o", str(run_dir), "-q"],
                            env={**os.environ, "OMP_NUM_THREADS": "1"}, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    _wait_for_round(run_dir, lambda: proc.poll() is None)
    assert proc.poll() is None, proc.stderr.read().decode() if proc.stderr else ""
    proc.kill()
    proc.wait()
    assert 1 <= _checkpoint_round(run_dir) < 12
    model = kiln.train(yaml.safe_load(path.read_text()), resume=run_dir)
    assert len(model.history) == 12 and _checkpoint_round(run_dir) == 12


@pytest.mark.slow
def test_ray_worker_killed_is_one_line_then_resume_finishes(tmp_path: Path, ray_cluster: None) -> None:
    """kill -9 of one Ray Train worker: the run stops with one line naming --resume, which then finishes it."""
    import psutil

    cfg = config(table(tmp_path / "t.csv", rows=800), {"type": "ray", "workers": 2, "resources_per_worker": {"cpu": 1}},
                 epochs=12, batch_size=8)
    run_dir, errors = tmp_path / "run", []

    def run() -> None:
        try:
            kiln.train(cfg, output=run_dir)
        except KilnError as exc:
            errors.append(str(exc))

    thread = threading.Thread(target=run)
    thread.start()
    _wait_for_round(run_dir, thread.is_alive)
    workers = [p for p in psutil.process_iter(["cmdline"]) if "RayTrainWorker" in " ".join(p.info["cmdline"] or [])]
    assert workers, "no Ray Train worker process found"
    workers[0].kill()
    thread.join(timeout=180)
    assert not thread.is_alive() and len(errors) == 1
    assert "--resume" in errors[0] and "\n" not in errors[0]
    assert _checkpoint_round(run_dir) < 12
    model = kiln.train(cfg, resume=run_dir)
    assert len(model.history) == 12 and _checkpoint_round(run_dir) == 12
