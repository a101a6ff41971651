"""Model type hf on SST-2 10%: the cached frozen-encoder path against the frozen encoder run live every
step, a LoRA adapter and full fine-tuning, side by side in one process.

The checkpoint is BERT-shaped with random weights (created here: kiln never downloads and no real
pre-trained checkpoint is on the machine), so the accuracies are meaningless: only the times are
compared. Arms: `cached` = `trainer.freeze: [encoder]` (each row encoded once, the head trains on the
cached pooled vectors); `frozen-live` = the same config with the cache switched off (the encoder runs
forward every step, as before the cached path existed); `lora` = `model.adapter` r 8 on query/value;
`full` = every weight trained. Reports per arm: the time spent encoding (cached only), the mean
training time of an epoch (the history's epoch_time, validation excluded), the wall time of the whole
`kiln.train` call (load, encode, N epochs, validation, test), their ratios to the cached arm, and the
load average (`uptime`) before and after each arm. Usage::

    .venv/bin/python benchmarks/hf_frozen.py [--epochs 2] [--sample 0.1] [--layers 4] [--hidden 256]
        [--arms cached,frozen-live,lora,full] [--output benchmarks/results/hf_frozen.json]
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any
from unittest import mock

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("KILN_THREADS", "1")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
ROOT = Path(__file__).resolve().parents[1]
DATA = Path(os.environ.get("KILN_DATA", ROOT.parent / "shared" / "data"))
ARMS = ("cached", "frozen-live", "lora", "full")
LEARNING_RATE = {"cached": 1e-3, "frozen-live": 1e-3, "lora": 5e-4, "full": 5e-5}


def make_checkpoint(folder: Path, layers: int, hidden: int, seed: int) -> Path:
    """A random-init BERT (hidden/64 heads, 4x feed-forward) with a WordPiece vocabulary learnt from SST-2 train."""
    import tokenizers
    import torch
    import transformers

    transformers.utils.logging.disable_progress_bar()
    from kiln.data import as_frame

    sentences = as_frame(str(DATA / "sst2" / "train.tsv"))["sentence"].dropna().astype(str)
    wordpiece = tokenizers.BertWordPieceTokenizer(lowercase=True)
    wordpiece.train_from_iterator(sentences.tolist(), vocab_size=8000, min_frequency=2, show_progress=False)
    vocab = folder / "vocab"
    vocab.mkdir(parents=True, exist_ok=True)
    wordpiece.save_model(str(vocab))
    tokenizer = transformers.BertTokenizerFast.from_pretrained(str(vocab), local_files_only=True)
    path = folder / "bert"
    tokenizer.save_pretrained(str(path))
    config = transformers.BertConfig(vocab_size=tokenizer.vocab_size, hidden_size=hidden, num_hidden_layers=layers,
                                     num_attention_heads=max(1, hidden // 64), intermediate_size=4 * hidden,
                                     max_position_embeddings=128)
    torch.manual_seed(seed)
    transformers.BertModel(config).save_pretrained(str(path))
    return path


def arm_config(arm: str, checkpoint: Path, epochs: int, sample: float, seed: int) -> dict[str, Any]:
    model: dict[str, Any] = {"type": "hf", "path": str(checkpoint), "pooling": "cls", "dropout": 0.1}
    trainer: dict[str, Any] = {"epochs": epochs, "batch_size": 32, "eval_batch_size": 256, "optimizer": "adamw",
                               "learning_rate": LEARNING_RATE[arm], "lr_schedule": {"type": "linear_warmup", "warmup": 0.1},
                               "seed": seed, "threads": 1}
    if arm in ("cached", "frozen-live"):
        trainer["freeze"] = ["encoder"]
    if arm == "lora":
        model["adapter"] = {"type": "lora", "r": 8, "alpha": 16, "target_modules": ["query", "value"]}
    return {
        "data": {"train": str(DATA / "sst2" / "train.tsv"), "test": str(DATA / "sst2" / "dev.tsv"), "sample": sample,
                 "split": {"validation": 0.1, "seed": 42}},
        "input_features": [{"name": "sentence", "type": "text", "max_length": 64}],
        "output_features": [{"name": "label", "type": "category"}],
        "model": model,
        "trainer": trainer,
    }


def run_arm(arm: str, config: dict[str, Any], folder: Path) -> dict[str, Any]:
    import kiln
    from kiln.io import read_json

    load_before = load_average()
    live = mock.patch("kiln.supervised.task.cache_frozen", return_value=None) if arm == "frozen-live" else mock.MagicMock()
    tick = time.perf_counter()
    with live:
        model = kiln.train(config, output=folder)
    wall = time.perf_counter() - tick
    report = read_json(folder / "data_report.json")
    epochs = [row["epoch_time"] for row in model.history]
    return {"arm": arm, "wall_s": round(wall, 2), "epoch_s": round(sum(epochs) / len(epochs), 2), "epoch_times_s": epochs,
            "encode_s": (report.get("frozen_encoder") or {}).get("seconds"), "rows": report["rows"],
            "dev_accuracy": round(model.metrics["test"]["accuracy"], 4), "learning_rate": config["trainer"]["learning_rate"],
            "load_average": [load_before, load_average()]}


def load_average() -> str:
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--epochs", type=int, default=2)
    p.add_argument("--sample", type=float, default=0.1, help="data.sample of the SST-2 training file")
    p.add_argument("--layers", type=int, default=4)
    p.add_argument("--hidden", type=int, default=256)
    p.add_argument("--seed", type=int, default=0, help="checkpoint weights and trainer.seed")
    p.add_argument("--arms", default=",".join(ARMS))
    p.add_argument("--output", default=str(ROOT / "benchmarks" / "results" / "hf_frozen.json"))
    args = p.parse_args(argv)
    arms = [a for a in args.arms.split(",") if a]
    unknown = sorted(set(arms) - set(ARMS))
    if unknown:
        p.error(f"unknown arms {unknown}; valid: {', '.join(ARMS)}")
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        checkpoint = make_checkpoint(Path(tmp), args.layers, args.hidden, args.seed)
        run_arm("cached", arm_config("cached", checkpoint, 1, 0.01, args.seed), Path(tmp) / "warmup")  # imports, first reads
        for arm in arms:
            rows.append(run_arm(arm, arm_config(arm, checkpoint, args.epochs, args.sample, args.seed), Path(tmp) / arm))
    base = next((r for r in rows if r["arm"] == "cached"), rows[0])
    for r in rows:
        r["wall_vs_cached"] = round(r["wall_s"] / base["wall_s"], 2)
        r["epoch_vs_cached"] = round(r["epoch_s"] / base["epoch_s"], 1) if base["epoch_s"] else None  # a tiny sample's cached epoch can round to 0
    print(f"{'arm':<12} {'encode s':>8} {'epoch s':>8} {'x cached':>8} {f'train {args.epochs} epochs s':>18} {'x cached':>8} "
          f"{'dev acc (random ckpt)':>21}  load average (before, after)")
    for r in rows:
        encode = f"{r['encode_s']:.1f}" if r["encode_s"] is not None else "-"
        print(f"{r['arm']:<12} {encode:>8} {r['epoch_s']:>8.2f} {str(r['epoch_vs_cached'] or '-'):>8} {r['wall_s']:>18.1f} "
              f"{r['wall_vs_cached']:>8} {r['dev_accuracy']:>21.4f}  {r['load_average'][0]}, {r['load_average'][1]}")
    meta = {"command": "python benchmarks/hf_frozen.py " + " ".join(argv if argv is not None else sys.argv[1:]),
            "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()), "cores": os.cpu_count(), "threads": 1,
            "checkpoint": {"type": "bert", "layers": args.layers, "hidden": args.hidden, "weights": "random init",
                           "seed": args.seed},
            "data": {"train": "sst2/train.tsv", "sample": args.sample, "validation": 0.1, "test": "sst2/dev.tsv",
                     "max_length": 64},
            "epochs": args.epochs, "note": "random checkpoint: accuracies are meaningless, compare times only",
            "runs": rows}
    from kiln.io import write_json

    write_json(args.output, meta)
    print(f"results written to {args.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
