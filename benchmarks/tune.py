"""kiln tune on the digits MLP: TPE + median pruning (kiln's default sampler settings) against the same
TPE search unpruned and against a random search with many more trials (all of 15 epochs, the same
space, the same data).

Reports, per seed and summed: the best validation loss of each search, the gap of the pruned TPE search
to the big random search (target ≤ 0.005), the share of trials pruned (target ≥ 25%) and the wall time
of the pruned search over the unpruned one (target ≤ 0.80). The pruned and unpruned searches of one
seed run back to back in ABBA order, so a loaded machine skews them alike; `uptime`'s load average is
recorded. The random reference of a seed is deterministic (validation losses do not depend on the
machine's load): it is computed once and kept in `--random-cache`. Usage::

    .venv/bin/python benchmarks/tune.py [--trials 20] [--epochs 15] [--random-trials 150] [--seeds 5]
        [--repeats 2] [--arms pruned,unpruned] [--set tune.sampler.startup_trials=5 ...]
        [--random-cache benchmarks/results/tune_random_cache.json] [--output benchmarks/results/tune.json]

`--arms pruned` skips the unpruned search (no wall ratio: for comparing sampler settings by their gap);
`--set PATH=YAML` changes the TPE searches' config (e.g. tune.sampler.multivariate=false).
"""

from __future__ import annotations

import argparse
import copy
import hashlib
import json
import os
import sys
import tempfile
import time
from pathlib import Path

import yaml

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("KILN_THREADS", "1")
ROOT = Path(__file__).resolve().parents[1]

BASE = {
    "data": {"train": "sklearn:digits", "split": {"validation": 0.2, "test": 0.2, "seed": 42}},
    "input_features": [{"name": "image", "type": "image", "normalization": "per_pixel"}],
    "output_features": [{"name": "label", "type": "category"}],
    "model": {"type": "mlp", "hidden": [256, 128], "dropout": 0.4},
    "trainer": {"epochs": 15, "batch_size": 32, "optimizer": "adam", "learning_rate": 0.002},
}
SPACE = {
    "trainer.learning_rate": {"type": "float", "low": 1.0e-4, "high": 1.0e-1, "log": True},
    "trainer.batch_size": {"type": "choice", "values": [32, 64, 128]},
    "model.hidden": {"type": "choice", "values": [[64], [128, 64], [256, 128]]},
    "model.dropout": {"type": "float", "low": 0.0, "high": 0.5},
}
MEDIAN = {"type": "median", "startup_trials": 5, "warmup_epochs": 3}


def config(epochs: int, trials: int, sampler: dict, pruner: dict, changes: list[tuple[str, object]] = ()) -> dict:
    from kiln.config import set_path

    cfg = copy.deepcopy(BASE)
    cfg["trainer"]["epochs"] = epochs
    cfg["tune"] = {"trials": trials, "sampler": sampler, "pruner": pruner, "parameters": SPACE}
    for path, value in changes:
        cfg = set_path(cfg, path, value)
    return cfg


def run(cfg: dict, folder: Path) -> dict:
    import kiln

    tick = time.perf_counter()
    result = kiln.tune(cfg, output=folder)
    s = result.summary
    epochs = int(result.trials["epochs"].fillna(0).sum())
    return {"best": s["best_value"], "trials": s["trials"], "complete": s["complete"], "pruned": s["pruned"],
            "failed": s["failed"], "epochs_run": epochs, "wall_s": round(time.perf_counter() - tick, 2),
            "best_trial": s["best_trial"], "best_params": s["best_params"]}


def random_reference(args: argparse.Namespace, seed: int, folder: Path) -> dict:
    """The best of `--random-trials` random trials for a seed: from the cache, else run and cached."""
    # start_from_base stated, not left to kiln's default: a pure random search (its trial 0 is a random draw
    # too), and the cache key changes if this does (the default changed once under a cache keyed without it)
    cfg = config(args.epochs, args.random_trials, {"type": "random", "seed": seed}, {"type": "none"},
                 [("tune.start_from_base", False)])
    key = hashlib.sha256(json.dumps(cfg, sort_keys=True).encode()).hexdigest()[:16]
    cache_path = Path(args.random_cache)
    cache = json.loads(cache_path.read_text()) if args.random_cache and cache_path.is_file() else {}
    if key in cache:
        return {**cache[key], "cached": True}
    outcome = run(cfg, folder / f"random{seed}")
    if args.random_cache:
        cache[key] = {"seed": seed, "random_trials": args.random_trials, "epochs": args.epochs, **outcome}
        cache_path.parent.mkdir(parents=True, exist_ok=True)
        cache_path.write_text(json.dumps(cache, indent=2) + "\n")
    return {**outcome, "cached": False}


def load_average() -> str:
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


def totals(rows: list[dict]) -> dict:
    pruned = [r["tpe_median"] for r in rows]
    out = {"seeds_within_0.005": sum(r["gap_to_random"] <= 0.005 for r in rows),
           "mean_gap": round(sum(r["gap_to_random"] for r in rows) / len(rows), 4),
           "pruned_share": round(sum(p["pruned"] for p in pruned) / sum(p["trials"] for p in pruned), 3)}
    if all("tpe_unpruned" in r for r in rows):
        a, b = sum(p["wall_s"] for p in pruned), sum(r["tpe_unpruned"]["wall_s"] for r in rows)
        out.update({"wall_pruned_s": round(a, 1), "wall_unpruned_s": round(b, 1), "wall_ratio": round(a / b, 3)})
    return out


def report(rows: list[dict], args: argparse.Namespace, argv: list[str] | None) -> None:
    """The table so far, and the JSON (rewritten after every seed, so a stopped run keeps its finished seeds)."""
    print(f"{'seed':>4}  {'TPE+median best':>15}  {'TPE best':>8}  {f'random x{args.random_trials} best':>17}  "
          f"{'gap':>7}  {'pruned':>6}  {'epochs run':>10}  {'wall pruned/unpruned (s)':>24}  load average (before, after)")
    for r in rows:
        p, u = r["tpe_median"], r.get("tpe_unpruned")
        wall = f"{p['wall_s']:>7.1f} / {u['wall_s']:<6.1f} = {r['wall_ratio']:.2f}" if u else f"{p['wall_s']:>7.1f} / -"
        print(f"{r['seed']:>4}  {p['best']:>15.4f}  {(u['best'] if u else float('nan')):>8.4f}  {r['random']['best']:>17.4f}  "
              f"{r['gap_to_random']:>+7.4f}  {r['pruned_share']:>6.0%}  {p['epochs_run']:>4} / {u['epochs_run'] if u else '-':<3}  "
              f"{wall:>24}  {r['load_average'][0]}, {r['load_average'][1]}")
    t = totals(rows)
    wall = f", wall pruned/unpruned {t['wall_pruned_s']} s / {t['wall_unpruned_s']} s = {t['wall_ratio']:.2f}" if "wall_ratio" in t else ""
    print(f"all seeds: {t['seeds_within_0.005']}/{len(rows)} within 0.005, mean gap {t['mean_gap']:+.4f}, "
          f"pruned {t['pruned_share']:.0%}{wall}")
    meta = {"command": "python benchmarks/tune.py " + " ".join(argv if argv is not None else sys.argv[1:]),
            "trials": args.trials, "epochs": args.epochs, "random_trials": args.random_trials, "seeds": args.seeds,
            "seeds_done": len(rows), "repeats": args.repeats, "set": args.set, "totals": t,
            "targets": {"gap_to_random": "<= 0.005", "pruned_share": ">= 0.25", "wall_ratio": "<= 0.80"}, "runs": rows}
    Path(args.output).parent.mkdir(parents=True, exist_ok=True)
    Path(args.output).write_text(json.dumps(meta, indent=2) + "\n")
    print(f"results written to {args.output}", flush=True)


def change(text: str) -> tuple[str, object]:
    path, sep, value = text.partition("=")
    if not sep:
        raise argparse.ArgumentTypeError(f"--set takes PATH=VALUE, got {text!r}")
    return path, yaml.safe_load(value)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--trials", type=int, default=20)
    p.add_argument("--epochs", type=int, default=15)
    p.add_argument("--random-trials", type=int, default=150)
    p.add_argument("--random-cache", default=str(ROOT / "benchmarks" / "results" / "tune_random_cache.json"),
                   help="JSON file keeping each seed's random reference, keyed by its config ('' to always re-run it; "
                        "delete it after a change to how kiln trains, which would change the losses)")
    p.add_argument("--seeds", type=int, default=5)
    p.add_argument("--first-seed", type=int, default=0)
    p.add_argument("--repeats", type=int, default=2, help="runs of each of the pruned and unpruned TPE searches (2: ABBA order)")
    p.add_argument("--arms", default="pruned,unpruned", choices=["pruned,unpruned", "pruned"])
    p.add_argument("--set", action="append", type=change, default=[], metavar="PATH=VALUE",
                   help="a change to the TPE searches' config, e.g. tune.sampler.multivariate=false")
    p.add_argument("--output", default=str(ROOT / "benchmarks" / "results" / "tune.json"))
    args = p.parse_args(argv)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        run(config(1, 1, {"type": "random", "seed": 0}, {"type": "none"}), Path(tmp) / "warmup")  # imports, first-call costs
        for seed in range(args.first_seed, args.first_seed + args.seeds):
            random = random_reference(args, seed, Path(tmp))
            tpe = {"type": "tpe", "seed": seed}  # everything else: kiln's defaults
            load_before = load_average()
            walls: dict[str, list[float]] = {"pruned": [], "unpruned": []}
            outcomes: dict[str, dict] = {}
            order = ["pruned", "unpruned", "unpruned", "pruned"] if args.repeats == 2 else ["pruned", "unpruned"] * args.repeats
            if args.arms == "pruned":
                order = ["pruned"]
            for i, arm in enumerate(order):  # ABBA: a load that drifts during the run skews both arms alike
                cfg = config(args.epochs, args.trials, tpe, MEDIAN if arm == "pruned" else {"type": "none"}, args.set)
                outcome = run(cfg, Path(tmp) / f"{arm}{seed}-{i}")
                walls[arm].append(outcome["wall_s"])
                outcomes[arm] = outcome
            row = {"seed": seed, "random": random}
            for arm, name in (("pruned", "tpe_median"), ("unpruned", "tpe_unpruned")):
                if arm in outcomes:
                    outcomes[arm]["wall_s"] = round(sum(walls[arm]) / len(walls[arm]), 2)
                    outcomes[arm]["wall_runs_s"] = walls[arm]
                    row[name] = outcomes[arm]
            pruned = outcomes["pruned"]
            row.update({"gap_to_random": round(pruned["best"] - random["best"], 4),
                        "pruned_share": round(pruned["pruned"] / pruned["trials"], 3),
                        "load_average": [load_before, load_average()]})
            if "unpruned" in outcomes:
                row["wall_ratio"] = round(pruned["wall_s"] / outcomes["unpruned"]["wall_s"], 3)
            rows.append(row)
            report(rows, args, argv)
    return 0


if __name__ == "__main__":
    sys.exit(main())
