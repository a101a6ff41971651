"""Where the wall time of a kiln tune search goes outside the epochs: the digits searches of
benchmarks/tune.py (20 TPE trials × 15 epochs, one seed), pruned and unpruned, with each part timed by
a wrapper (no profiler, so the times are wall times as the benchmark sees them). Run it from two trees
one after the other to compare them part by part. Usage::

    .venv/bin/python benchmarks/tune_parts.py [--seed 0] [--repeats 1] [--trials 20] [--epochs 15]
        [--output benchmarks/results/tune_parts.json]
"""

from __future__ import annotations

import argparse
import collections
import importlib
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from tune import MEDIAN, ROOT, config, load_average  # noqa: E402

from kiln.io import write_json

PARTS = {  # label → "module:attribute" where the callers look it up (a name imported elsewhere is listed again)
    "data preparation (once a search)": ["kiln.tuning.search:_prepare_data"],
    "opening the SQLite storage": ["kiln.tuning.study:open_storage", "kiln.tuning.local:open_storage",
                                   "kiln.tuning.outputs:open_storage"],
    "study.ask (per trial)": ["optuna.study:Study.ask"],
    "sampling (per trial)": ["kiln.tuning.space:SearchSpace.suggest"],
    "study.get_trials (progress line, pruner)": ["optuna.study:Study.get_trials"],
    "trial.report (per epoch)": ["optuna.trial:Trial.report"],
    "trial.should_prune (per epoch)": ["optuna.trial:Trial.should_prune"],
    "Trainer.fit (epochs)": ["kiln.training.trainer:Trainer.fit"],
    "a trial's run (training and its run files)": ["kiln.tuning.trial:TrialRunner.run"],
    "best trial's plots and report.html": ["kiln.tuning.trial:TrialResult.write_report"],
    "outputs (table, best/, fANOVA, report page)": ["kiln.tuning.outputs:write_outputs"],
    "  fANOVA importances": ["kiln.tuning.outputs:param_importances"],
    "  report page": ["kiln.tuning.report:write_report"],
}


def wrap(spec: str, label: str, totals: dict[str, float], calls: collections.Counter) -> None:
    module, attribute = spec.split(":")
    owner: Any = importlib.import_module(module)
    *path, name = attribute.split(".")
    for part in path:
        owner = getattr(owner, part)
    original = getattr(owner, name)

    def timed(*args: Any, **kwargs: Any) -> Any:
        tick = time.perf_counter()
        try:
            return original(*args, **kwargs)
        finally:
            totals[label] += time.perf_counter() - tick
            calls[label] += 1

    setattr(owner, name, timed)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--trials", type=int, default=20)
    p.add_argument("--epochs", type=int, default=15)
    p.add_argument("--repeats", type=int, default=1, help="pairs of searches (pruned, unpruned); times are averaged")
    p.add_argument("--output", default=str(ROOT / "benchmarks" / "results" / "tune_parts.json"))
    args = p.parse_args(argv)
    import kiln

    for spec in [s for specs in PARTS.values() for s in specs]:
        importlib.import_module(spec.split(":")[0])  # every module first: none imports a wrapped name later
    totals: dict[str, float] = collections.defaultdict(float)
    calls: collections.Counter = collections.Counter()
    for label, specs in PARTS.items():
        for spec in specs:
            wrap(spec, label, totals, calls)
    load_before = load_average()
    results: dict[str, dict[str, Any]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        kiln.tune(config(1, 1, {"type": "random", "seed": 0}, {"type": "none"}), output=Path(tmp) / "warmup")
        for arm in ("pruned", "unpruned"):
            totals.clear()
            calls.clear()
            wall = 0.0
            for i in range(args.repeats):
                cfg = config(args.epochs, args.trials, {"type": "tpe", "seed": args.seed}, MEDIAN if arm == "pruned" else {"type": "none"})
                tick = time.perf_counter()
                kiln.tune(cfg, output=Path(tmp) / f"{arm}{i}")
                wall += time.perf_counter() - tick
            results[arm] = {"wall_s": round(wall / args.repeats, 3),
                            "parts": {k: {"s": round(totals[k] / args.repeats, 3), "calls": calls[k] // args.repeats}
                                      for k in PARTS}}
    print(f"{'part':<44}  {'pruned s (calls)':>17}  {'unpruned s (calls)':>19}")
    for label in ["whole search", *PARTS]:
        cells = []
        for arm in ("pruned", "unpruned"):
            r = results[arm]
            cells.append(f"{r['wall_s']:.3f}" if label == "whole search" else
                         f"{r['parts'][label]['s']:.3f} ({r['parts'][label]['calls']})")
        print(f"{label:<44}  {cells[0]:>17}  {cells[1]:>19}")
    meta = {"command": "python benchmarks/tune_parts.py " + " ".join(argv if argv is not None else sys.argv[1:]),
            "seed": args.seed, "repeats": args.repeats, "trials": args.trials, "epochs": args.epochs, "load_average": [load_before, load_average()], **results}
    write_json(args.output, meta)
    print(f"load average {load_before} → {load_average()}; results written to {args.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
