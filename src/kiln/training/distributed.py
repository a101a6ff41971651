"""Data-parallel training for kiln's one Trainer: the `backend:` config section and the launchers.

`local` trains in this process. `torchrun` starts `workers` processes on this machine
(torch.distributed, env:// rendezvous on 127.0.0.1; gloo on CPU, nccl on GPU). `ray` runs the same
workers through Ray Train's TorchTrainer, on a local or an existing multi-machine Ray cluster.
Every worker runs the same task function; the Trainer wraps the network in DDP, the task gives
each rank its slice of every global batch, and rank 0 alone writes the run directory."""

from __future__ import annotations

import contextlib
import hashlib
import os
import socket
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any, Literal

import torch
import torch.distributed as dist
from pydantic import Field

from kiln.config import Section
from kiln.errors import KilnError


class ResourcesConfig(Section):
    cpu: float = Field(1.0, ge=0)
    gpu: float = Field(0.0, ge=0)


class BackendConfig(Section):
    """Where training runs: this process, several local processes, or a Ray cluster."""

    type: Literal["local", "torchrun", "ray"] = "local"
    workers: int = Field(2, ge=1, le=4096)  # torchrun / ray: data-parallel processes
    address: str | None = None  # ray: "auto" (a running cluster), "ray://host:10001", or null (start a local Ray)
    resources_per_worker: ResourcesConfig = ResourcesConfig()  # ray


# -- inside a worker ----------------------------------------------------------------------------
def rank_and_world() -> tuple[int, int]:
    """(this process's rank, number of data-parallel processes); (0, 1) outside distributed training."""
    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    return 0, 1


def in_worker() -> bool:
    return rank_and_world()[1] > 1 or os.environ.get("KILN_WORKER") == "1"


def is_main() -> bool:
    return rank_and_world()[0] == 0


def all_sum(values: list[float], device: torch.device) -> list[float]:
    """Element-wise sum of `values` over all ranks (identity when not distributed)."""
    if rank_and_world()[1] == 1:
        return values
    tensor = torch.tensor(values, dtype=torch.float64, device=device)
    dist.all_reduce(tensor)
    return tensor.tolist()


def from_main(value: Any) -> Any:
    """Rank 0's `value` on every rank (identity when not distributed)."""
    if rank_and_world()[1] == 1:
        return value
    box = [value]
    dist.broadcast_object_list(box, src=0)
    return box[0]


def gather_all(value: Any) -> list[Any]:
    """Every rank's `value`, in rank order, on every rank ([value] when not distributed)."""
    world = rank_and_world()[1]
    if world == 1:
        return [value]
    out: list[Any] = [None] * world
    dist.all_gather_object(out, value)
    return out


def weights_digest(net: torch.nn.Module) -> str:
    """A short SHA-256 of a network's state (to check that every worker ends with the same weights)."""
    digest = hashlib.sha256()
    for name, value in sorted(net.state_dict().items()):
        digest.update(name.encode())
        digest.update(value.detach().cpu().contiguous().reshape(-1).view(torch.uint8).numpy().tobytes())
    return digest.hexdigest()[:16]


def shard_rows(index: torch.Tensor) -> tuple[torch.Tensor, float]:
    """This rank's rows of a global batch (`index`) and the factor that makes DDP's mean of the
    ranks' mean losses equal the global batch's mean loss: rows_here * world / rows_in_batch.
    A rank left without rows runs its first row with factor 0 (DDP needs every rank's backward)."""
    rank, world = rank_and_world()
    if world == 1:
        return index, 1.0
    mine = index.tensor_split(world)[rank]
    if len(mine) == 0:
        return index[:1], 0.0
    return mine, len(mine) * world / len(index)


# -- launching ----------------------------------------------------------------------------------
def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _die_with_parent() -> None:
    """Linux: this worker gets SIGKILL when the launching process dies (kill -9 leaves no orphans)."""
    with contextlib.suppress(Exception):
        import ctypes

        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, 9)  # PR_SET_PDEATHSIG, SIGKILL


def _threads_per_worker(workers: int) -> str:
    """Torch threads for each worker: $KILN_THREADS, else the cores shared out (trainer.threads wins)."""
    return os.environ.get("KILN_THREADS") or str(max(1, (os.cpu_count() or 1) // workers))


def _run_worker(fn: Callable[..., Any], args: tuple, errors: str, threads: str, own_group: bool = True) -> None:
    """Run the task in an initialised process group; a KilnError is written for the launcher to show."""
    os.environ["KILN_WORKER"] = "1"
    os.environ["KILN_THREADS"] = threads
    try:
        fn(*args)
    except KilnError as exc:
        rank = rank_and_world()[0]
        Path(errors, f"rank{rank}").write_text(str(exc))
        raise SystemExit(2) from None
    else:
        # Rank 0 is still writing the run directory when the others return; a rank that tore its group down
        # right after the last collective (the weights digest) could abort in gloo's teardown while its send
        # was in flight ("terminate called without an active exception"). Everyone leaves together.
        if own_group and dist.is_initialized():
            dist.barrier()
    finally:
        if own_group and dist.is_initialized():
            dist.destroy_process_group()


def _spawned(local_rank: int, world: int, port: int, fn: Callable[..., Any], args: tuple, errors: str, threads: str) -> None:
    _die_with_parent()
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), RANK=str(local_rank),
                      WORLD_SIZE=str(world), LOCAL_RANK=str(local_rank))
    cuda = torch.cuda.is_available() and torch.cuda.device_count() >= world  # nccl: one GPU per worker
    if cuda:
        torch.cuda.set_device(local_rank)
    dist.init_process_group("nccl" if cuda else "gloo", init_method="env://", rank=local_rank, world_size=world)
    _run_worker(fn, args, errors, threads)
    # Done, group torn down, files written and closed: leave without the interpreter's exit-time destructors.
    # Under load a worker sometimes aborted there ("terminate called without an active exception": a native
    # thread still joinable when its owner was destroyed), failing a finished run with SIGABRT.
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0)


def _first_error(errors: str) -> str | None:
    messages = sorted(Path(errors).glob("rank*"))
    return messages[0].read_text() if messages else None


def absolute_data_paths(data: Any) -> None:
    """Workers may start in another directory (Ray): make the data section's existing file paths absolute."""
    def absolute(value: Any) -> Any:
        if isinstance(value, str) and not value.startswith("sklearn:") and Path(value).exists():
            return str(Path(value).resolve())
        return value

    for name, value in data:
        setattr(data, name, [absolute(v) for v in value] if isinstance(value, list) else absolute(value))


def launch_run(config: Any, run_dir: Path, resume: bool, worker: Callable[..., Any], extra: tuple = (),
               callbacks: Any = ()) -> None:
    """Run `worker(config, where, *extra)` on every worker of `config.backend` for one run directory:
    where = {"output": run_dir} for a fresh run, {"resume": run_dir} to continue one; rank 0 writes it."""
    if callbacks:
        raise KilnError(f"callbacks= run in the training process and are not supported with backend.type "
                        f"{config.backend.type}; use backend.type local")
    absolute_data_paths(config.data)
    where = {"resume" if resume else "output": str(Path(run_dir).resolve())}
    launch(config.backend, worker, (config, where, *extra))


def check_even_batches(backend: BackendConfig, batch_size: int) -> None:
    """Sampled tasks (language models, pre-training) give each worker an equal slice of every batch."""
    if backend.type != "local" and batch_size % backend.workers:
        raise KilnError(f"trainer.batch_size ({batch_size}) must be a multiple of backend.workers ({backend.workers}): "
                        "each worker trains on an equal slice of every batch")


def launch(backend: BackendConfig, fn: Callable[..., Any], args: tuple) -> None:
    """Run `fn(*args)` on every worker of `backend` and wait; a worker's failure is one KilnError."""
    threads = _threads_per_worker(backend.workers)
    with tempfile.TemporaryDirectory(prefix="kiln-workers-") as errors:
        if backend.type == "ray":
            from kiln.training.ray_backend import run_on_ray

            threads = os.environ.get("KILN_THREADS") or str(max(1, int(backend.resources_per_worker.cpu)))
            run_on_ray(backend, fn, args, errors, threads, _first_error)
            return
        _spawn(backend.workers, fn, args, errors, threads)


def _spawn(workers: int, fn: Callable[..., Any], args: tuple, errors: str, threads: str) -> None:
    import logging

    import torch.multiprocessing as mp

    logging.getLogger("torch.multiprocessing.spawn").setLevel(logging.ERROR)  # "Terminating process ...": ours is one line
    try:
        mp.start_processes(_spawned, args=(workers, _free_port(), fn, args, errors, threads), nprocs=workers,
                           join=True, start_method="spawn")
    except mp.ProcessExitedException as exc:
        message = _first_error(errors)
        if message:
            raise KilnError(message) from None
        raise KilnError(f"training worker {exc.error_index} of {workers} died ({_exit_reason(exc.exit_code)}); "
                        "the run directory keeps the last checkpoint: continue with --resume RUN_DIR") from None
    except mp.ProcessRaisedException as exc:
        last = [line for line in str(exc).strip().splitlines() if line.strip()][-1]
        raise KilnError(f"training worker failed: {last}") from None


def _exit_reason(code: int | None) -> str:
    import signal

    if code is not None and code < 0:
        with contextlib.suppress(ValueError):
            return f"signal {signal.Signals(-code).name}"
    return f"exit code {code}"
