"""`backend: {type: ray}`: the same workers as `torchrun`, placed by Ray Train's TorchTrainer (DDP over
the process group Ray sets up: gloo on CPU, nccl on GPU). Ray is an optional extra (`kiln[ray]`)."""

from __future__ import annotations

import tempfile
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from kiln.errors import KilnError

if TYPE_CHECKING:
    from kiln.training.distributed import BackendConfig


def _import_ray() -> Any:
    try:
        import ray
        import ray.train.torch  # noqa: F401
    except ImportError:
        raise KilnError("backend.type ray needs Ray, which is not installed: pip install 'kiln[ray]' "
                        "(or use backend.type torchrun on one machine)") from None
    return ray


def connect(backend: "BackendConfig") -> Any:
    """ray.init once per process: `address` null starts a local Ray; otherwise join that cluster."""
    ray = _import_ray()
    if ray.is_initialized():
        return ray
    try:
        if backend.address is None:
            ray.init(include_dashboard=False, log_to_driver=False, configure_logging=False)
        else:
            ray.init(address=backend.address, log_to_driver=False, configure_logging=False)
    except (ConnectionError, RuntimeError, ValueError) as exc:
        where = backend.address or "a new local instance"
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise KilnError(f"backend.address: cannot connect to Ray at {where} ({first}); start a cluster with "
                        "`ray start --head`, or set backend.address to null for a local one") from None
    return ray


def check_resources(ray: Any, backend: "BackendConfig") -> None:
    """Fail in one line, before anything waits, when the cluster cannot host the workers."""
    need = {"CPU": backend.resources_per_worker.cpu * backend.workers,
            "GPU": backend.resources_per_worker.gpu * backend.workers}
    have = ray.cluster_resources()
    short = [f"{name} {need[name]:g} needed, {have.get(name, 0):g} in the cluster"
             for name in ("CPU", "GPU") if need[name] > have.get(name, 0) + 1e-9]
    if short:
        raise KilnError(f"backend: {backend.workers} workers x resources_per_worker "
                        f"{backend.resources_per_worker.model_dump()} cannot be met: {'; '.join(short)}")


def run_on_ray(backend: "BackendConfig", fn: Callable[..., Any], args: tuple, errors: str, threads: str,
               first_error: Callable[[str], str | None]) -> None:
    """Run `fn(*args)` on `backend.workers` Ray Train workers and wait for them."""
    ray = connect(backend)
    check_resources(ray, backend)
    from ray.train import FailureConfig, RunConfig, ScalingConfig
    from ray.train.torch import TorchTrainer

    from kiln.training.distributed import _run_worker

    def loop(_: dict[str, Any]) -> None:
        _run_worker(fn, args, errors, threads, own_group=False)

    gpu = backend.resources_per_worker.gpu
    trainer = TorchTrainer(
        loop,
        scaling_config=ScalingConfig(num_workers=backend.workers, use_gpu=gpu > 0,
                                     resources_per_worker={"CPU": backend.resources_per_worker.cpu, "GPU": gpu}),
        run_config=RunConfig(name="kiln", storage_path=tempfile.mkdtemp(prefix="kiln-ray-"),
                             failure_config=FailureConfig(max_failures=0)),
    )
    try:
        trainer.fit()
    except Exception as exc:  # noqa: BLE001  (Ray wraps a worker's failure in its own error types)
        message = first_error(errors)
        if message:
            raise KilnError(message) from None
        text = [line for line in str(exc).strip().splitlines() if line.strip()]
        raise KilnError(f"Ray training failed: {text[-1] if text else type(exc).__name__}; "
                        "the run directory keeps the last checkpoint: continue with --resume RUN_DIR") from None
