"""fANOVA parameter importances with fewer trees than Optuna's 64: how far they move and what they save,
on the studies of finished kiln tune searches (their study.db). Usage::

    .venv/bin/python benchmarks/tune_importances.py SEARCH_DIR [SEARCH_DIR ...] [--trees 64,32,16]
        [--output benchmarks/results/tune_importances.json]

For each search and tree count: the importances (seed 0, as kiln computes them), the seconds, the
largest change of any parameter's importance against the first tree count, whether the most important
parameter stays the same, and Spearman's rank correlation with the first tree count's importances.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("searches", nargs="+", help="kiln tune output directories (each holds study.db)")
    p.add_argument("--trees", default="64,32,16")
    p.add_argument("--output", default=str(ROOT / "benchmarks" / "results" / "tune_importances.json"))
    args = p.parse_args(argv)
    import optuna
    from scipy.stats import spearmanr

    optuna.logging.set_verbosity(optuna.logging.ERROR)
    trees = [int(n) for n in args.trees.split(",")]
    rows = []
    for folder in map(Path, args.searches):
        study = optuna.load_study(study_name="kiln", storage=f"sqlite:///{(folder / 'study.db').resolve()}")
        found = {}
        for n in trees:
            tick = time.perf_counter()
            evaluator = optuna.importance.FanovaImportanceEvaluator(n_trees=n, seed=0)
            importances = optuna.importance.get_param_importances(study, evaluator=evaluator)
            found[n] = {"seconds": round(time.perf_counter() - tick, 4),
                        "importances": {k: round(float(v), 4) for k, v in importances.items()}}
        ref = found[trees[0]]["importances"]
        names = sorted(ref)
        for n in trees:
            mine = found[n]["importances"]
            found[n].update(max_change=round(max(abs(mine[k] - ref[k]) for k in names), 4),
                            same_top=max(mine, key=mine.get) == max(ref, key=ref.get),
                            spearman=round(float(spearmanr([ref[k] for k in names], [mine[k] for k in names])[0]), 2))
        rows.append({"search": str(folder), "trees": found})
        print(f"{folder.name:>12}  " + "  |  ".join(
            f"{n} trees: {found[n]['seconds'] * 1000:4.0f} ms, max change {found[n]['max_change']:.3f}, "
            f"same top {found[n]['same_top']}, rho {found[n]['spearman']:.2f}" for n in trees))
    Path(args.output).parent.mkdir(parents=True, exist_ok=True)
    Path(args.output).write_text(json.dumps({"command": "python benchmarks/tune_importances.py " + " ".join(
        argv if argv is not None else sys.argv[1:]), "trees": trees, "searches": rows}, indent=2) + "\n")
    print(f"results written to {args.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
