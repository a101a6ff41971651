"""`backend: ray`: Ray Train workers give the same weights as one process; one-line errors. The tests
share one local Ray instance (num_cpus=2) and skip when Ray is not installed."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import torch

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
