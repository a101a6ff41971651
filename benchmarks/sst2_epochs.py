"""Screen a supervised config on SST-2: train one seed and score `dev.tsv` after every epoch (the weights
are copied at each epoch's end), to see where dev accuracy peaks while validation accuracy keeps rising.

    OMP_NUM_THREADS=1 KILN_DATA=/work/shared/data python benchmarks/sst2_epochs.py examples/sst2_cnn.yaml \
        trainer.seed=0 trainer.epochs=3 'model.hidden=[256]'

Prints one line and appends it to benchmarks/results/sst2_epochs.json.
"""

from __future__ import annotations

import argparse
import copy
import json
import os
import resource
import time
from pathlib import Path
from typing import Any

import pandas as pd
import yaml

import kiln

ROOT = Path(__file__).resolve().parents[1]


def overridden(path: str, sets: list[str]) -> dict[str, Any]:
    cfg = yaml.safe_load(Path(path).read_text().replace("${KILN_DATA}", os.environ.get("KILN_DATA", "data")))
    for item in sets:
        key, _, value = item.partition("=")
        *parents, last = key.split(".")
        node = cfg
        for part in parents:
            node = node.setdefault(part, {})
        node[last] = yaml.safe_load(value)
    return cfg


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("config")
    p.add_argument("sets", nargs="*", help="KEY=VALUE overrides (value parsed as YAML)")
    p.add_argument("--output", default="runs/sst2_epochs")
    p.add_argument("--results", default=str(ROOT / "benchmarks" / "results" / "sst2_epochs.json"))
    args = p.parse_args()
    cfg = overridden(args.config, args.sets)
    states: list[dict[str, Any]] = []
    keep = lambda trainer, row: states.append(copy.deepcopy(trainer.net.state_dict()))  # noqa: E731
    start = time.time()
    model = kiln.train(cfg, output=args.output, callbacks=[keep])
    seconds = time.time() - start
    dev = pd.read_csv(cfg["data"]["test"], sep="\t", quoting=3, lineterminator="\n")
    per_epoch = []
    for state in states:
        model.net.load_state_dict(state)
        predicted = model.predict(dev).iloc[:, 0].astype(str).to_numpy()
        per_epoch.append(round(float((predicted == dev["label"].astype(str).to_numpy()).mean()), 4))
    row = {"config": args.config, "sets": args.sets, "dev_accuracy_per_epoch": per_epoch,
           "train_s": round(seconds, 1), "cpu_s": round(resource.getrusage(resource.RUSAGE_SELF).ru_utime, 1),
           "load": [round(x, 2) for x in os.getloadavg()], "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())}
    print(json.dumps(row))
    results = Path(args.results)
    results.parent.mkdir(parents=True, exist_ok=True)
    rows = json.loads(results.read_text()) if results.is_file() else []
    results.write_text(json.dumps([*rows, row], indent=2) + "\n")


if __name__ == "__main__":
    main()
