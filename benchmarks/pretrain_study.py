"""Where masked-LM pre-training stops helping: SST-2 dev accuracy after fine-tuning on 10% of the
labels, as a function of pre-training iterations (snapshots of one run) and corpus.

    python benchmarks/pretrain_study.py --iterations 1000 --snapshots 250 500 1000 --corpus mixed sst2

Each corpus is one `kiln pretrain` run of examples/sst2_pretrain.yaml (`mixed`: SST-2 training
sentences + Tiny Shakespeare lines, `sst2`: the SST-2 sentences alone); the encoder is saved at
every snapshot iteration of that run (the cosine schedule spans the whole run, so an early snapshot
was taken at a higher learning rate than a run of that length would end with). Every snapshot is
fine-tuned with examples/sst2_finetune.yaml on `data.sample=0.1` (30 epochs, patience 5), and the
from-scratch row (iteration 0) uses the same fine-tune config with model.pretrained=null.
Prints a table and writes benchmarks/results/pretrain_study.json (rows are added as they finish).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "benchmarks" / "results" / "pretrain_study.json"
CORPORA = {"mixed": ["${KILN_DATA}/sst2/train.tsv", "${KILN_DATA}/tinyshakespeare/input.txt"], "sst2": ["${KILN_DATA}/sst2/train.tsv"]}
FINETUNE = ["--set", "data.sample=0.1", "--set", "trainer.epochs=30", "--set", "trainer.early_stopping.patience=5"]


def load() -> float:
    return os.getloadavg()[0]


def record(rows: list[dict[str, Any]], row: dict[str, Any]) -> None:
    rows.append(row)
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(rows, indent=2) + "\n")
    print(json.dumps(row), flush=True)


def snapshotter(run_dir: Path, wanted: set[int]) -> Any:
    """A callback that copies the encoder (model.json + weights) at the wanted iterations."""
    from kiln.io import save_tensors

    def save(trainer: Any, row: dict[str, Any]) -> None:
        step = int(row["iteration"])
        if step in wanted:
            folder = run_dir / f"snap_{step}" / "model"
            folder.mkdir(parents=True, exist_ok=True)
            shutil.copy(run_dir / "model" / "model.json", folder / "model.json")
            save_tensors(folder / "weights.safetensors", {k: v.detach().cpu() for k, v in trainer.net.state_dict().items()})

    return save


def pretrain(corpus: str, iterations: int, snapshots: list[int], seed: int, out: Path) -> dict[str, Any]:
    from kiln.pretrain import pretrain as run_pretrain

    from kiln.config import read_yaml

    raw = read_yaml(ROOT / "examples" / "sst2_pretrain.yaml")
    raw["data"].update(train=CORPORA[corpus], seed=seed)
    raw["trainer"].update(iterations=iterations, eval_interval=min(snapshots), seed=seed)
    start, load0 = time.perf_counter(), load()
    encoder = run_pretrain(raw, output=out, callbacks=[snapshotter(out, set(snapshots))])
    return {"corpus": corpus, "iterations": iterations, "seed": seed, "seconds": round(time.perf_counter() - start, 1),
            "load": round((load0 + load()) / 2, 2), "validation": encoder.metrics["validation"]}


def finetune(pretrained: Path | None, seed: int, out: Path) -> dict[str, Any]:
    cmd = [sys.executable, "-m", "kiln", "train", str(ROOT / "examples" / "sst2_finetune.yaml"), *FINETUNE,
           "--set", f"trainer.seed={seed}", "--set", f"model.pretrained={pretrained if pretrained else 'null'}", "-o", str(out), "-q"]
    start, load0 = time.perf_counter(), load()
    subprocess.run(cmd, check=True)
    metrics = json.loads((out / "metrics.json").read_text())
    return {"seed": seed, "accuracy": metrics["test"]["accuracy"], "seconds": round(time.perf_counter() - start, 1),
            "load": round((load0 + load()) / 2, 2), "command": " ".join(cmd[2:])}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--iterations", type=int, default=1000)
    parser.add_argument("--snapshots", type=int, nargs="+", default=[250, 500, 1000])
    parser.add_argument("--finetune", type=int, nargs="+", default=None, help="snapshots to fine-tune (default: all)")
    parser.add_argument("--corpus", nargs="+", default=["mixed", "sst2"], choices=sorted(CORPORA))
    parser.add_argument("--scratch", action="store_true", help="also fine-tune from scratch (iteration 0)")
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--work", default="runs/pretrain_study")
    args = parser.parse_args()
    work = Path(args.work)
    rows: list[dict[str, Any]] = json.loads(RESULTS.read_text()) if RESULTS.exists() else []
    if args.scratch:
        record(rows, {"corpus": "none", "iteration": 0, **finetune(None, args.seed, work / "scratch")})
    for corpus in args.corpus:
        run = work / f"pt_{corpus}"
        info = pretrain(corpus, args.iterations, args.snapshots, args.seed, run)
        record(rows, {"pretrain": info})
        for step in sorted(args.finetune or args.snapshots, reverse=True):
            record(rows, {"corpus": corpus, "iteration": step, **finetune(run / f"snap_{step}", args.seed, work / f"ft_{corpus}_{step}")})
    print(f"\n| corpus | pre-training iterations | SST-2 dev accuracy (10% labels) | fine-tune s | load |\n|---|---|---|---|---|")
    for r in rows:
        if "accuracy" in r:
            print(f"| {r['corpus']} | {r['iteration']} | {r['accuracy']:.4f} | {r['seconds']} | {r['load']} |")


if __name__ == "__main__":
    main()
