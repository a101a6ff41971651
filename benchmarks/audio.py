"""Audio benchmarks on the Free Spoken Digit Dataset ($KILN_DATA/fsdd), one thread.

Parts (``--parts``, comma-separated):

* ``extract``: feature extraction throughput (files/s) over the first ``--files`` recordings: cold (decode +
  resample + log-mel, no cache), from the on-disk cache (a fresh in-memory cache), and from memory.
* ``epoch``: training-epoch time of the audio feature (spectrograms from the cache, then held as tensors) versus
  the same spectrograms handed to kiln as in-memory arrays (an ``image`` feature of the same (40, 101) shape, the
  same CNN): median epoch time of epochs 2..N over interleaved repeats; target ratio <= 1.10.
* ``train``: ``examples/fsdd_cnn.yaml`` on the official split: wall time and test accuracy.
* ``loso``: leave-one-speaker-out (group 5-fold over the 5 speakers, no validation split) with the example's
  augmentation on and off: mean ± std test accuracy over folds.

Usage::

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/audio.py --parts extract,epoch,train,loso
        [--files 500] [--repeats 3] [--epochs 4] [--output benchmarks/results/audio.json]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DATA = Path(os.environ.get("KILN_DATA") or ROOT.parent / "shared" / "data")
EXAMPLE = ROOT / "examples" / "fsdd_cnn.yaml"


def example_config() -> dict:
    import yaml

    os.environ.setdefault("KILN_DATA", str(DATA))
    config = yaml.safe_load(EXAMPLE.read_text())
    config["data"]["train"] = str(DATA / "fsdd" / "index.csv")
    return config


def part_extract(args: argparse.Namespace) -> dict:
    import pandas as pd

    from kiln.data import read_table
    from kiln.features.audio import AudioConfig, AudioFeature
    from kiln.features.audio_io import CACHE

    table = read_table(DATA / "fsdd" / "index.csv").head(args.files)
    paths = pd.Series([str(DATA / "fsdd" / p) for p in table["path"]])
    spec = example_config()["input_features"][0]
    rows = {}
    with tempfile.TemporaryDirectory() as cache_dir:
        os.environ["KILN_CACHE_DIR"] = cache_dir
        for name, cache, clear in (("cold (decode + log-mel)", True, True), ("disk cache", True, True), ("memory cache", True, False)):
            if clear:
                CACHE.clear()
            feature = AudioFeature(AudioConfig(**{**spec, "cache": cache}))
            tick = time.perf_counter()
            for row, path in paths.items():
                feature._one(path, row)
            seconds = time.perf_counter() - tick
            rows[name] = {"files": len(paths), "seconds": round(seconds, 3), "files_per_s": round(len(paths) / seconds, 1)}
    return rows


def _epoch_times(history) -> list[float]:
    return [float(row["epoch_time"]) for row in history][1:]


def part_epoch(args: argparse.Namespace) -> dict:
    import pandas as pd

    import kiln
    from kiln.data import read_table
    from kiln.features.audio import AudioConfig, AudioFeature

    base = example_config()
    spec = {**base["input_features"][0], "augmentation": {}}
    table = read_table(DATA / "fsdd" / "index.csv")
    table = table[table["split"] == "train"].reset_index(drop=True)
    table["path"] = [str(DATA / "fsdd" / p) for p in table["path"]]
    feature = AudioFeature(AudioConfig(**spec))
    cleaned, _ = feature.clean(table["path"])
    arrays = feature._stack(cleaned)[:, 1:, :]  # the spectrograms without the mask row: (n, 40, 101)
    memory = pd.DataFrame({"spec": list(arrays.astype("float32")), "digit": table["digit"]})
    common = {"output_features": base["output_features"], "model": base["model"],
              "trainer": {**base["trainer"], "epochs": args.epochs}}
    audio_cfg = {**common, "data": {"split": {"validation": 0.0, "test": 0.0}}, "input_features": [spec]}
    memory_cfg = {**common, "data": {"split": {"validation": 0.0, "test": 0.0}},
                  "input_features": [{"name": "spec", "type": "image", "channels": 1}]}
    times: dict[str, list[float]] = {"audio (cached spectrograms)": [], "in-memory tensors (image arrays)": []}
    walls: dict[str, list[float]] = {k: [] for k in times}
    with tempfile.TemporaryDirectory() as out:
        for r in range(args.repeats):
            order = list(times) if r % 2 == 0 else list(reversed(times))
            for name in order:
                cfg, data = (audio_cfg, table[["path", "digit"]]) if name.startswith("audio") else (memory_cfg, memory)
                tick = time.perf_counter()
                model = kiln.train(cfg, data=data, output=Path(out) / f"{r}-{name[:5]}", progress=False)
                walls[name].append(time.perf_counter() - tick)
                times[name].extend(_epoch_times(model.history))
    med = {k: statistics.median(v) for k, v in times.items()}
    a, m = med["audio (cached spectrograms)"], med["in-memory tensors (image arrays)"]
    return {"rows": len(table), "epochs_per_run": args.epochs, "repeats": args.repeats,
            "median_epoch_s": {k: round(v, 3) for k, v in med.items()},
            "median_run_wall_s": {k: round(statistics.median(v), 2) for k, v in walls.items()},
            "ratio_audio_to_memory": round(a / m, 3), "target": 1.10, "met": a / m <= 1.10,
            "epoch_times": {k: [round(t, 3) for t in v] for k, v in times.items()}}


def part_train(args: argparse.Namespace) -> dict:
    import kiln

    config = example_config()
    with tempfile.TemporaryDirectory() as out:
        tick = time.perf_counter()
        model = kiln.train(config, output=Path(out) / "run", progress=False)
        wall = time.perf_counter() - tick
    epochs = [float(row["epoch_time"]) for row in model.history]
    return {"config": str(EXAMPLE.relative_to(ROOT)), "wall_s": round(wall, 1), "epochs": len(epochs),
            "median_epoch_s": round(statistics.median(epochs), 2),
            "test_accuracy": round(model.metrics["test"]["accuracy"], 4),
            "validation_accuracy": round(model.metrics["validation"]["accuracy"], 4)}


def part_loso(args: argparse.Namespace) -> dict:
    import kiln

    results = {}
    settings = (("augmentation on", True), ("augmentation off", False))
    for label, augment in [x for x in settings if args.loso_augment in ("both", x[0].split()[-1])]:
        config = example_config()
        config["data"]["split"] = {"group": "speaker", "validation": 0.0, "test": 0.0, "seed": 42}
        if not augment:
            config["input_features"][0]["augmentation"] = {}
        if args.loso_epochs:
            config["trainer"]["epochs"] = args.loso_epochs
        tick = time.perf_counter()
        cv = kiln.cross_validate(config, folds=5, progress=False)
        acc = cv["metrics"]["accuracy"]
        results[label] = {"accuracy_mean": round(acc["mean"], 4), "accuracy_std": round(acc["std"], 4),
                          "per_fold": [round(a, 4) for a in acc["per_fold"]], "epochs": config["trainer"]["epochs"],
                          "wall_s": round(time.perf_counter() - tick, 1)}
    return results


def print_table(part: str, result: dict, prefix: str = "") -> None:
    """One `part | measure | value` row per scalar or short list (long per-epoch lists stay in the JSON)."""
    for key, value in result.items():
        if isinstance(value, dict):
            print_table(part, value, f"{prefix}{key} / ")
        elif not isinstance(value, list) or len(value) <= 5:
            print(f"{part:8} | {prefix + key:<50} | {value}", flush=True)


PARTS = {"extract": part_extract, "epoch": part_epoch, "train": part_train, "loso": part_loso}


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--parts", default="extract,epoch,train", help=f"comma-separated: {', '.join(PARTS)}")
    p.add_argument("--files", type=int, default=500, help="recordings for the extraction throughput")
    p.add_argument("--repeats", type=int, default=3, help="interleaved run pairs for the epoch comparison")
    p.add_argument("--epochs", type=int, default=4, help="epochs per run in the epoch comparison (the first is dropped)")
    p.add_argument("--loso-epochs", type=int, default=0, help="override the example's epochs in the LOSO runs (0: keep)")
    p.add_argument("--loso-augment", choices=["both", "on", "off"], default="both", help="LOSO runs with augmentation on, off or both")
    p.add_argument("--output", default=str(ROOT / "benchmarks" / "results" / "audio.json"))
    args = p.parse_args(argv)
    import torch

    torch.set_num_threads(1)
    output = Path(args.output)
    results = json.loads(output.read_text()) if output.is_file() else {}
    load = os.getloadavg()
    for name in args.parts.split(","):
        print(f"== {name}", flush=True)
        tick = time.perf_counter()
        result = PARTS[name](args)
        results[name] = {"result": result, "load_average": [round(x, 2) for x in load], "seconds": round(time.perf_counter() - tick, 1),
                         "command": " ".join(["benchmarks/audio.py", *(argv or sys.argv[1:])]),
                         "commit": subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, cwd=ROOT).stdout.strip()}
        print_table(name, result)
        output.parent.mkdir(parents=True, exist_ok=True)
        output.write_text(json.dumps(results, indent=2) + "\n")
    print(f"uptime load average: {os.getloadavg()}; results in {output}")


if __name__ == "__main__":
    main()
