"""What every worker shares: the command line, the ready mark and the result line.

A worker runs in its system's own interpreter (kiln's venv or a peer's venv under
benchmarks/compare/.venvs), so this module uses the standard library only. The harness reads two
lines from the worker's stdout: `KILN_BENCH_READY <unix time>` once the framework is imported and
the data is loaded and preprocessed (training is about to start), and `KILN_BENCH_RESULT <json>`
at the end."""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path
from typing import Any

READY = "KILN_BENCH_READY"
RESULT = "KILN_BENCH_RESULT"
_marked: list[float] = []


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser()
    p.add_argument("--task", required=True)
    p.add_argument("--seed", type=int, required=True)
    p.add_argument("--work", required=True, help="the task's prepared split files (written by prepare.py)")
    p.add_argument("--params", default="{}", help="JSON: the task's size and recipe (epochs, batch size, ...)")
    args = p.parse_args(argv)
    args.params = json.loads(args.params)
    args.work = Path(args.work)
    return args


def mark_ready() -> None:
    """Print the ready mark once: framework imported, data loaded and preprocessed."""
    if not _marked:
        _marked.append(time.perf_counter())
        print(f"{READY} {time.time():.6f}", flush=True)


def since_ready() -> float:
    return time.perf_counter() - _marked[0]


def report(metrics: dict[str, Any], **extra: Any) -> None:
    """Print the result line: the task metrics and the train + evaluate seconds since the ready mark."""
    print(RESULT + " " + json.dumps({"metrics": metrics, "train_eval_s": since_ready(), **extra}), flush=True)


def threads() -> int:
    return int(os.environ.get("OMP_NUM_THREADS", "1"))


def read_meta(work: Path) -> dict[str, Any]:
    return json.loads((work / "meta.json").read_text())


def fail(message: str) -> None:
    print(message, file=sys.stderr, flush=True)
    raise SystemExit(2)


def epochs(meta: dict[str, Any], params: dict[str, Any]) -> int:
    """kiln's epochs, or fewer when the harness caps this peer (--peer-epochs)."""
    return min(int(meta["trainer"]["epochs"]), int(params.get("max_epochs") or meta["trainer"]["epochs"]))


ADAM_LIKE = ("adam", "adamw")
PEER_DEFAULT_LR = 0.001  # Adam's (and Keras', Ludwig's) default step size


def learning_rate(meta: dict[str, Any]) -> float:
    """The peers' (Adam) learning rate: kiln's when kiln trains with Adam or AdamW; otherwise Adam's default
    0.001, since kiln's SGD step size (0.1 for the n-gram configs) makes Adam diverge."""
    tr = meta["trainer"]
    return float(tr["learning_rate"]) if str(tr.get("optimizer", "adam")).lower() in ADAM_LIKE else PEER_DEFAULT_LR
