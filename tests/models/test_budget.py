"""The memory check builds networks on the meta device with nn.init's fillers skipped (in that thread
only), and refuses one that cannot fit before allocating it."""

from __future__ import annotations

import subprocess
import sys
import threading

import pytest
import torch
from torch import nn

from kiln.errors import KilnError
from kiln.models import budget


def test_the_count_is_exact_and_the_real_build_is_initialised() -> None:
    make = lambda: nn.Sequential(nn.Embedding(50, 8), nn.LSTM(8, 6), nn.LayerNorm(6), nn.Linear(6, 3))  # noqa: E731
    count = budget.parameter_count(make)
    real = budget.build_within_memory(make, "the test network")
    assert count == sum(p.numel() for p in real.parameters())
    assert real[0].weight.std() > 0.5 and real[3].weight.abs().sum() > 0 and torch.equal(real[2].weight, torch.ones(6))


def test_a_probe_in_one_thread_leaves_another_threads_init_alone() -> None:
    started, release, built = threading.Event(), threading.Event(), []

    def slow_make() -> nn.Module:
        started.set()
        release.wait(5)
        return nn.Linear(4, 4)

    probe = threading.Thread(target=budget.parameter_count, args=(slow_make,))
    probe.start()
    started.wait(5)  # the probe is inside its meta build now
    built.append(nn.Linear(4, 4))
    release.set()
    probe.join()
    assert built[0].weight.abs().sum() > 0


def test_too_big_is_refused_before_allocating() -> None:
    with pytest.raises(KilnError, match="parameters: ~.* GiB to train"):
        budget.build_within_memory(lambda: nn.Embedding(10**9, 4096), "the huge network")


def test_loading_a_model_does_not_import_torch_dynamo(tmp_path) -> None:
    """Filling meta tensors would import torch._dynamo, seconds of start-up for kiln predict and serve."""
    code = ("import sys; from kiln.models import budget; from torch import nn; "
            "budget.build_within_memory(lambda: nn.Sequential(nn.Embedding(9, 4), nn.Linear(4, 2)), 'x', 1); "
            "print('torch._dynamo' in sys.modules)")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "False"
