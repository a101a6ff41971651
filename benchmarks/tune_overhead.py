"""What a kiln tune trial costs besides training: cProfile of one digits search (20 unpruned TPE trials ×
15 epochs, seed 0, as benchmarks/tune.py), per trial, with the study's SQLite in its old rollback-journal
mode (an fsync per commit) and in kiln's write-ahead-log mode, side by side in one process. Usage::

    .venv/bin/python benchmarks/tune_overhead.py [--trials 20] [--epochs 15] [--timer cpu|wall] [--pruned]
        [--output benchmarks/results/tune_overhead.json]
    .venv/bin/python benchmarks/tune_overhead.py --plain   # no profiler: the two modes' wall times, ABBA

cProfile inflates Python-heavy code several-fold: use its shares to find costs, `--plain` to size them.
"""

from __future__ import annotations

import argparse
import cProfile
import json
import os
import pstats
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from tune import MEDIAN, ROOT, config, load_average  # noqa: E402

PARTS = {  # label → (file suffix, function): cumulative time of each
    "whole search (kiln.tune)": ("kiln/tuning/search.py", "tune"),
    "trial objective": ("kiln/tuning/local.py", "objective"),
    "  trial training (kiln.supervised train)": ("kiln/supervised/task.py", "train"),
    "    Trainer.fit (epochs, checkpoints)": ("kiln/training/trainer.py", "fit"),
    "      checkpoints (save_checkpoint)": ("kiln/training/checkpoint.py", "save_checkpoint"),
    "      epoch reports (report + should_prune)": ("kiln/tuning/local.py", "report"),
    "    model.save (all calls)": ("kiln/supervised/artifact.py", "save"),
    "    run.finish (metrics, history files)": ("kiln/training/run.py", "finish"),
    "    validation/test metrics (metrics_for)": ("kiln/supervised/artifact.py", "metrics_for"),
    "    training stats (drift reference)": ("kiln/monitor/stats.py", "write_training_stats"),
    "  sampling (suggest_*)": ("kiln/tuning/space.py", "suggest"),
    "  trial dir removal (rmtree)": ("shutil.py", "rmtree"),
    "study.ask (new trial row)": ("optuna/study/study.py", "ask"),
    "study.tell (finish trial)": ("optuna/study/_tell.py", "_tell_with_warning"),
    "set_user_attr": ("optuna/trial/_trial.py", "set_user_attr"),
    "progress line (after)": ("kiln/tuning/local.py", "after"),
    "outputs (table, best/, report)": ("kiln/tuning/outputs.py", "write_outputs"),
    "SQLite commits": ("~", "<method 'commit' of 'sqlite3.Connection' objects>"),
}


def profile(cfg: dict, folder: Path, timer: str) -> tuple[dict, float, float]:
    import kiln

    prof = cProfile.Profile(time.process_time if timer == "cpu" else time.perf_counter)
    wall, cpu = time.perf_counter(), time.process_time()
    prof.runcall(kiln.tune, cfg, output=folder)
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    stats = pstats.Stats(prof).stats
    out = {}
    for label, (suffix, name) in PARTS.items():
        out[label] = sum(v[3] for (f, _, fn), v in stats.items() if fn == name and f.endswith(suffix))
    out["SQLite commit count"] = sum(v[1] for (f, _, fn), v in stats.items() if fn == PARTS["SQLite commits"][1])
    return out, wall, cpu


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--trials", type=int, default=20)
    p.add_argument("--epochs", type=int, default=15)
    p.add_argument("--timer", choices=["cpu", "wall"], default="cpu")
    p.add_argument("--pruned", action="store_true", help="with median pruning (as the benchmark's pruned arm)")
    p.add_argument("--plain", action="store_true", help="no profiler: wall and CPU time of each mode, in ABBA order")
    p.add_argument("--output", default=str(ROOT / "benchmarks" / "results" / "tune_overhead.json"))
    args = p.parse_args(argv)
    import kiln
    import kiln.tuning.study as study

    fast = study._fast_commits
    pruner = MEDIAN if args.pruned else {"type": "none"}
    cfg = config(args.epochs, args.trials, {"type": "tpe", "seed": 0}, pruner)
    rows, load = {}, [load_average()]
    if args.plain:
        return plain(cfg, study, fast, args, load)
    with tempfile.TemporaryDirectory() as tmp:
        kiln.tune(config(1, 1, {"type": "random", "seed": 0}, {"type": "none"}), output=Path(tmp) / "warmup")
        for mode in ("rollback journal (fsync per commit)", "write-ahead log, synchronous=NORMAL (kiln)"):
            study._fast_commits = fast if "kiln" in mode else (lambda *_: None)
            parts, wall, cpu = profile(cfg, Path(tmp) / mode[:5], args.timer)
            rows[mode] = {"parts_s": {k: round(v, 3) for k, v in parts.items()}, "wall_s": round(wall, 2), "cpu_s": round(cpu, 2)}
        study._fast_commits = fast
    load.append(load_average())
    modes = list(rows)
    print(f"{args.trials} trials x {args.epochs} epochs, {'median-pruned' if args.pruned else 'unpruned'} TPE seed 0; "
          f"{args.timer} time per trial in ms (load average {load[0]} → {load[1]})")
    print(f"{'part':<44}" + "".join(f"{m[:24]:>26}" for m in modes))
    for label in PARTS:
        vals = [rows[m]["parts_s"][label] * 1000 / args.trials for m in modes]
        print(f"{label:<44}" + "".join(f"{v:>26.1f}" for v in vals))
    print(f"{'SQLite commits per trial':<44}" + "".join(f"{rows[m]['parts_s']['SQLite commit count'] / args.trials:>26.1f}" for m in modes))
    print(f"{'search wall s / cpu s':<44}" + "".join(f"{rows[m]['wall_s']:>17.1f} / {rows[m]['cpu_s']:<6.1f}" for m in modes))
    Path(args.output).parent.mkdir(parents=True, exist_ok=True)
    Path(args.output).write_text(json.dumps({"command": "python benchmarks/tune_overhead.py " + " ".join(argv or sys.argv[1:]),
                                             "timer": args.timer, "load_average": load, "modes": rows}, indent=2) + "\n")
    return 0


def plain(cfg: dict, study, fast, args: argparse.Namespace, load: list[str]) -> int:
    import kiln

    times: dict[str, list[tuple[float, float]]] = {"rollback journal": [], "write-ahead log (kiln)": []}
    with tempfile.TemporaryDirectory() as tmp:
        kiln.tune(config(1, 1, {"type": "random", "seed": 0}, {"type": "none"}), output=Path(tmp) / "warmup")
        for i, mode in enumerate(["write-ahead log (kiln)", "rollback journal", "rollback journal", "write-ahead log (kiln)"]):
            study._fast_commits = fast if "kiln" in mode else (lambda *_: None)
            wall, cpu = time.perf_counter(), time.process_time()
            kiln.tune(cfg, output=Path(tmp) / f"run{i}")
            times[mode].append((round(time.perf_counter() - wall, 2), round(time.process_time() - cpu, 2)))
        study._fast_commits = fast
    load.append(load_average())
    print(f"{args.trials} trials x {args.epochs} epochs, {'median-pruned' if args.pruned else 'unpruned'} TPE seed 0, "
          f"no profiler, ABBA (load average {load[0]} → {load[1]})")
    for mode, runs in times.items():
        print(f"{mode:<24} wall s {' + '.join(str(w) for w, _ in runs)} = {sum(w for w, _ in runs):.1f}   "
              f"cpu s {' + '.join(str(c) for _, c in runs)} = {sum(c for _, c in runs):.1f}")
    Path(args.output).parent.mkdir(parents=True, exist_ok=True)
    Path(args.output).write_text(json.dumps({"command": "python benchmarks/tune_overhead.py " + " ".join(sys.argv[1:]),
                                             "load_average": load, "wall_cpu_s": times}, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
