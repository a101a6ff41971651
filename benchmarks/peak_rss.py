"""Resident memory while `kiln.train` runs a config: sampled from /proc/self/statm every 0.1 s (Linux).

Prints the peak, the RSS when training starts and at the end of each epoch, and writes
benchmarks/results/peak_rss.json.

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/peak_rss.py examples/sst2_ngram_large.yaml --epochs 2
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import threading
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
PAGE_MB = os.sysconf("SC_PAGE_SIZE") / 2**20


def resident_mb() -> float:
    return int(Path("/proc/self/statm").read_text().split()[1]) * PAGE_MB


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("config")
    p.add_argument("--epochs", type=int, default=None, help="trainer.epochs (default: the config's)")
    p.add_argument("--output", default=str(ROOT / "benchmarks" / "results" / "peak_rss.json"))
    args = p.parse_args(argv)
    if not Path("/proc/self/statm").exists():
        sys.exit("benchmarks/peak_rss.py reads /proc/self/statm: Linux only")

    import kiln
    from kiln.config import raw_config
    from kiln.training import Callback

    start = time.perf_counter()
    samples: list[tuple[float, float]] = []

    def sample() -> None:
        while True:
            samples.append((time.perf_counter() - start, resident_mb()))
            time.sleep(0.1)

    threading.Thread(target=sample, daemon=True).start()
    marks: list[dict[str, Any]] = []

    class Marks(Callback):
        def on_train_begin(self, trainer: Any) -> None:
            marks.append({"at": "train begins", "s": time.perf_counter() - start, "rss_mb": resident_mb()})

        def on_round_end(self, trainer: Any, row: dict[str, Any]) -> None:
            marks.append({"at": f"epoch {row.get('epoch')} ends", "s": time.perf_counter() - start, "rss_mb": resident_mb()})

    config = raw_config(args.config)
    if args.epochs is not None:
        config.setdefault("trainer", {})["epochs"] = args.epochs
    kiln.train(config, output=ROOT / "runs" / "peak-rss", progress=False, callbacks=[Marks()])
    peak = max([rss for _, rss in samples] + [m["rss_mb"] for m in marks])
    print(f"{'point':24s}{'s':>8s}{'RSS MB':>10s}")
    for mark in marks:
        print(f"{mark['at']:24s}{mark['s']:8.1f}{mark['rss_mb']:10.0f}")
    print(f"{'peak':24s}{'':8s}{peak:10.0f}")
    out = Path(args.output)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({"config": args.config, "epochs": args.epochs, "marks": marks, "peak_rss_mb": peak,
                               "load": os.getloadavg()}, indent=2))


if __name__ == "__main__":
    main()
