"""Fault-suite helpers: run kiln in a subprocess, kill it with SIGKILL at a random moment."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

CLI = [sys.executable, "-c", "from kiln.cli import main; main()"]
ENV = {**os.environ, "OMP_NUM_THREADS": "1", "KILN_THREADS": "1"}


def kill_at_random(args: list[str], checkpoint: Path, rng: random.Random, max_delay_s: float) -> bool:
    """Start `kiln ARGS`; once a checkpoint exists wait a random 0..max_delay_s, then SIGKILL.
    Returns False when the process finished before the kill landed."""
    proc = subprocess.Popen([*CLI, *args], env=ENV, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 300
    while not checkpoint.exists() and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.01)
    time.sleep(rng.uniform(0.0, max_delay_s))
    if proc.poll() is not None:
        return False
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    return True


def run_kiln(args: list[str]) -> None:
    done = subprocess.run([*CLI, *args], env=ENV, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    assert done.returncode == 0, done.stderr[-2000:]
