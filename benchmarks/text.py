"""Text classification benchmark: kiln configs against TF-IDF + logistic regression, side by side.

Tasks (``--tasks``):

* ``sst2``: train on rows of ``$KILN_DATA/sst2/train.tsv``, report accuracy on the whole ``sst2/dev.tsv``, at
  each training size of ``--sizes``: ``2400`` (random rows, seed 42), ``6700`` (10%, as kiln's
  ``data.sample: 0.1`` keeps them: stratified, split seed 42) and ``all`` (67,349 rows).
* ``sms``: ``$KILN_DATA/sms_spam/sms_spam.tsv``, the split of ``examples/sms_spam.yaml`` (validation 0.1, test 0.2,
  seed 42, stratified), spam-class F1 on the test split. One size (all rows); ``--sizes`` does not apply.

Each kiln config of ``--configs`` is trained through ``kiln.train`` with overrides (the rows, ``trainer.seed``);
its task is the one whose file its ``data.train`` names. The baseline (scikit-learn ``TfidfVectorizer`` +
``LogisticRegression``, both at their defaults except ``max_iter``) trains on the rows kiln sees in all (its
training and validation splits) and is scored on the same test rows. Every (task, size, config, seed) cell is
cached in the JSON with a hash of the config text and overrides: a re-run only runs missing or changed cells
(``--fresh`` redoes all). Each cell prints its wall time and the load average (``uptime``); kiln cells also record
their epochs and ``best_epoch`` (the lowest validation loss).

Usage::

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/text.py --tasks sst2,sms --sizes 2400,6700,all --seeds 0,1,2 \\
        --configs examples/sst2_ngram.yaml,examples/sms_spam_ngram.yaml [--set trainer.epochs=5] [--fresh]
        [--output benchmarks/results/text.json]
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
DATA = Path(os.environ.get("KILN_DATA") or ROOT.parent / "shared" / "data")
BASELINE = "tfidf+lr"
DEFAULT_CONFIGS = ("examples/sst2_ngram.yaml", "examples/sms_spam_ngram.yaml")
TASKS = {
    "sst2": {"train": DATA / "sst2" / "train.tsv", "test": DATA / "sst2" / "dev.tsv", "text": "sentence",
             "label": "label", "metric": "accuracy", "split": {"validation": 0.1, "seed": 42}},
    "sms": {"train": DATA / "sms_spam" / "sms_spam.tsv", "test": None, "text": "text", "label": "label",
            "metric": "f1", "split": {"validation": 0.1, "test": 0.2, "seed": 42}, "positive": "spam"},
}


def load_average() -> float:
    return round(os.getloadavg()[0], 2)


def task_of(config: dict[str, Any]) -> str:
    from kiln.config import expand_path

    train = Path(expand_path(str(config.get("data", {}).get("train", "")))).resolve()
    for name, task in TASKS.items():
        if train == task["train"].resolve():
            return name
    raise SystemExit(f"error: {config.get('_path')}: data.train names no benchmark task's file ({train})")


def read_config(path: str, overrides: list[str]) -> dict[str, Any]:
    from kiln.config import apply_overrides, raw_config

    config = apply_overrides(raw_config(path), overrides)
    config["_path"] = path
    return config


def cell_hash(path: str, overrides: list[str], size: str) -> str:
    text = Path(path).read_text() if path != BASELINE else BASELINE
    return hashlib.sha256(json.dumps([text, overrides, size]).encode()).hexdigest()[:16]


def sized(task: str, size: str, config: dict[str, Any]) -> tuple[dict[str, Any], Any]:
    """The config with this size's rows: (config, data to pass to kiln.train)."""
    from kiln.config import set_path
    from kiln.data import read_table

    config = {k: v for k, v in config.items() if k != "_path"}
    if task != "sst2" or size == "all":
        return config, None
    if size == "6700":
        return set_path(config, "data.sample", 0.1), None
    frame = read_table(TASKS["sst2"]["train"])
    return config, frame.sample(n=int(size), random_state=42).reset_index(drop=True)


def baseline_rows(task: str, size: str) -> tuple[Any, Any]:
    """(training rows, test rows) as kiln splits them for this task and size (training = train + validation)."""
    import pandas as pd

    from kiln.supervised.task import load_splits

    spec = TASKS[task]
    output = {"name": spec["label"], "type": "binary", "positive": spec["positive"]} if "positive" in spec \
        else {"name": spec["label"], "type": "category"}
    config = {"data": {"train": str(spec["train"]), "split": spec["split"]},
              "input_features": [{"name": spec["text"], "type": "text"}], "output_features": [output]}
    if spec["test"]:
        config["data"]["test"] = str(spec["test"])
    config, data = sized(task, size, config)
    frames, _ = load_splits(_validated(config), data)
    train = pd.concat([frames["train"], frames["validation"]], ignore_index=True)
    return train, frames["test"]


def _validated(config: dict[str, Any]) -> Any:
    from kiln.supervised.config import load_supervised_config

    return load_supervised_config(config)


def run_baseline(task: str, size: str) -> float:
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import accuracy_score, f1_score

    spec = TASKS[task]
    train, test = baseline_rows(task, size)
    vectorizer = TfidfVectorizer()
    x_train = vectorizer.fit_transform(train[spec["text"]].astype(str))
    model = LogisticRegression(max_iter=1000).fit(x_train, train[spec["label"]].astype(str))
    predicted = model.predict(vectorizer.transform(test[spec["text"]].astype(str)))
    truth = test[spec["label"]].astype(str)
    if spec["metric"] == "f1":
        return float(f1_score(truth, predicted, pos_label=spec["positive"]))
    return float(accuracy_score(truth, predicted))


def run_kiln(task: str, size: str, config: dict[str, Any], seed: int) -> tuple[float, dict[str, Any]]:
    import kiln
    from kiln.config import set_path

    config, data = sized(task, size, config)
    config = set_path(config, "trainer.seed", seed)
    with tempfile.TemporaryDirectory() as run_dir:
        model = kiln.train(config, data=data, output=run_dir)
    test = model.metrics["test"]
    history = getattr(model, "history", []) or []
    losses = [row["validation_loss"] for row in history if "validation_loss" in row]
    extra = {"epochs": len(history) or None,  # best_epoch: the lowest validation loss (what restore_best keeps by default)
             "best_epoch": 1 + losses.index(min(losses)) if losses else None}
    return float(test[TASKS[task]["metric"]]), extra


def summarise(values: list[float]) -> dict[str, Any]:
    return {"mean": round(statistics.mean(values), 4), "std": round(statistics.stdev(values), 4) if len(values) > 1 else 0.0,
            "n": len(values)}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", default="sst2,sms")
    parser.add_argument("--sizes", default="2400,6700,all")
    parser.add_argument("--seeds", default="0,1,2")
    parser.add_argument("--configs", default=",".join(c for c in DEFAULT_CONFIGS if (ROOT / c).is_file()))
    parser.add_argument("--set", dest="overrides", action="append", default=[], help="KEY=VALUE for every kiln config")
    parser.add_argument("--fresh", action="store_true", help="redo every cell instead of reusing cached ones")
    parser.add_argument("--output", default=str(ROOT / "benchmarks" / "results" / "text.json"))
    args = parser.parse_args(argv)
    os.environ.setdefault("KILN_DATA", str(DATA))
    tasks = [t for t in args.tasks.split(",") if t]
    unknown = sorted(set(tasks) - set(TASKS))
    if unknown:
        raise SystemExit(f"error: unknown task(s) {unknown}; valid: {sorted(TASKS)}")
    sizes = [s for s in args.sizes.split(",") if s]
    if any(s != "all" and not s.isdigit() for s in sizes):
        raise SystemExit(f"error: --sizes takes row counts or 'all', got {args.sizes}")
    seeds = [int(s) for s in args.seeds.split(",") if s]
    configs = [read_config(p, args.overrides) for p in args.configs.split(",") if p]
    by_task = {t: [c for c in configs if task_of(c) == t] for t in tasks}
    output = Path(args.output)
    cache: dict[str, Any] = {} if args.fresh or not output.is_file() else json.loads(output.read_text()).get("cells", {})

    def save() -> None:
        output.parent.mkdir(parents=True, exist_ok=True)
        result = {"date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()), "command": " ".join(sys.argv),
                  "cells": cache, "summary": summary()}
        tmp = output.with_suffix(".tmp")
        tmp.write_text(json.dumps(result, indent=1))
        tmp.replace(output)

    def summary() -> dict[str, Any]:
        groups: dict[str, list[float]] = {}
        for key, cell in cache.items():
            task, size, name, _ = key.split("|")
            groups.setdefault(f"{task}|{size}|{name}", []).append(cell["metric"])
        return {k: summarise(v) for k, v in sorted(groups.items())}

    wanted: list[tuple[str, str, str, str, int]] = []  # (task, size, name, hash, seed)
    for task in tasks:
        for size in sizes if task == "sst2" else ["all"]:
            for name in [BASELINE, *[c["_path"] for c in by_task[task]]]:
                for seed in seeds:
                    wanted.append((task, size, name, cell_hash(name, args.overrides if name != BASELINE else [], size), seed))
    baseline_done: dict[tuple[str, str], tuple[float, float]] = {}  # (metric, seconds of its one fit)
    for task, size, name, digest, seed in wanted:
        key = f"{task}|{size}|{name}{'' if name == BASELINE or not args.overrides else ' ' + ' '.join(args.overrides)}|{seed}"
        if cache.get(key, {}).get("hash") == digest:
            continue
        load_before, start = load_average(), time.perf_counter()
        if name == BASELINE:  # deterministic: one fit per (task, size) serves every seed (and its time)
            if (task, size) not in baseline_done:
                baseline_done[(task, size)] = (run_baseline(task, size), time.perf_counter() - start)
            (metric, seconds), extra = baseline_done[(task, size)], {}
        else:
            config = next(c for c in by_task[task] if c["_path"] == name)
            metric, extra = run_kiln(task, size, config, seed)
            seconds = time.perf_counter() - start
        cache[key] = {"hash": digest, "metric": round(metric, 4), "seconds": round(seconds, 1),
                      "load": [load_before, load_average()], **extra}
        print(f"{key:<70} {TASKS[task]['metric']} {metric:.4f}  {seconds:7.1f} s  load {load_before:.2f} → {load_average():.2f}",
              flush=True)
        save()
    save()
    print(f"\n{'task':<5} {'size':>5}  {'config':<60} {'metric':<8} {'mean ± std':>16}  n  {'s/seed':>7}")
    shown = {f"{t}|{s}|{n}{'' if n == BASELINE or not args.overrides else ' ' + ' '.join(args.overrides)}" for t, s, n, _, _ in wanted}
    for group, stats in summary().items():
        if group not in shown:
            continue
        task, size, name = group.split("|")
        secs = [c["seconds"] for k, c in cache.items() if k.rsplit("|", 1)[0] == group]
        print(f"{task:<5} {size:>5}  {name:<60} {TASKS[task]['metric']:<8} {stats['mean']:.4f} ± {stats['std']:.4f}  "
              f"{stats['n']}  {statistics.mean(secs):7.1f}")
    print(f"\nload average now: {os.getloadavg()}; JSON: {output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
