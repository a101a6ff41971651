"""What the n-gram bag's hashing in a forked child buys (kiln.features.background): the preprocessing of a
config (fit on the training split, then encode every split) with the child and without it, alternately in
fresh processes, wall and CPU seconds of this process, and the load. The child only forks when a core is idle
(`spare_core`); here it is forced on or off. Prints a table; writes benchmarks/results/background_hashing.json.

    OMP_NUM_THREADS=1 KILN_DATA=/work/shared/data .venv/bin/python benchmarks/background_hashing.py \\
        examples/sst2_ngram_cnn.yaml [--repeats 3]
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time
from pathlib import Path


def one(config: str, child: bool) -> dict[str, float]:
    """Preprocess the config once in this (fresh) process; the seconds it took."""
    import kiln.api  # noqa: F401  (the imports a run has made by then)
    import torch

    torch.optim.SGD(torch.nn.Linear(2, 2).parameters(), lr=0.1)  # torch._dynamo loads, as in first_output.py
    from kiln.config import raw_config
    from kiln.features import background
    from kiln.supervised.config import load_supervised_config
    from kiln.supervised.task import later_splits, load_splits
    from kiln.data.preprocessor import Preprocessor

    background.spare_core = lambda: child
    settings = load_supervised_config(raw_config(config))
    frames, _ = load_splits(settings)
    import scipy.sparse  # noqa: F401  (imported before the clock starts either way)

    wall, cpu = time.perf_counter(), time.process_time()
    pre = Preprocessor(settings).fit(frames["train"], later_splits(frames))
    for frame in frames.values():
        pre.transform(frame)
    import resource

    return {"wall_s": time.perf_counter() - wall, "cpu_s": time.process_time() - cpu,
            "load": float(Path("/proc/loadavg").read_text().split()[0]),
            "minor_faults": resource.getrusage(resource.RUSAGE_SELF).ru_minflt}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("config")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--one", choices=["on", "off"], help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one:
        print(json.dumps(one(args.config, args.one == "on")))
        return
    runs: dict[str, list[dict[str, float]]] = {"on": [], "off": []}
    for _ in range(args.repeats):
        for mode in runs:
            out = subprocess.run([sys.executable, __file__, args.config, "--one", mode], check=True, capture_output=True, text=True)
            runs[mode].append(json.loads(out.stdout.strip().splitlines()[-1]))
    print("| child | fit + encode wall s, median (runs) | CPU s of this process, median | load |\n|---|---|---|---|")
    for mode, found in runs.items():
        walls = ", ".join(f"{r['wall_s']:.2f}" for r in found)
        loads = ", ".join(f"{r['load']:.1f}" for r in found)
        print(f"| {mode} | {statistics.median(r['wall_s'] for r in found):.2f} ({walls}) | "
              f"{statistics.median(r['cpu_s'] for r in found):.2f} | {loads} |")
    out_path = Path(__file__).parent / "results" / "background_hashing.json"
    from kiln.io import write_json

    write_json(out_path, {"config": args.config, "runs": runs})
    print(f"wrote {out_path}")


if __name__ == "__main__":
    main()
