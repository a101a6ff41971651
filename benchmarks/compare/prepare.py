"""Write one task's train / validation / test split to files every system reads (run in kiln's venv).

The split is kiln's own (`kiln.supervised.task.load_splits` on kiln's config for the task, so the
kiln run sees exactly these rows), exported as CSV (tables, text) or NPZ (digits: 64 raw pixels),
plus meta.json: the label column, the input columns (each once: several kiln features may read one
column) and kiln's trainer recipe, which the peers copy. Language modelling: the text file's path
and kiln's model and trainer sections.

    .venv/bin/python benchmarks/compare/prepare.py --config CONFIG_JSON --work DIR
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

import kiln.api  # noqa: F401  (registers the tasks)
from kiln.io import write_json
from kiln.tasks import load_task_config, task_name


def _supervised(config, work: Path) -> dict:
    from kiln.supervised.task import load_splits

    frames, _ = load_splits(config)
    inputs: dict[str, str] = {}  # source column → type: features that read one column (`column:`) share it
    text: dict[str, dict] = {}
    for f in config.input_features:
        column = f.column or f.name
        inputs.setdefault(column, f.type)
        if f.type == "text":
            text.setdefault(column, f.model_dump(mode="json"))
    label = config.output_features[0]
    columns = [*inputs, label.name]
    if list(inputs.values()) == ["image"]:
        name = next(iter(inputs))
        arrays = {}
        for split, frame in frames.items():
            arrays[f"X_{split}"] = np.stack([np.asarray(x, dtype="float32").reshape(-1) for x in frame[name]])
            arrays[f"y_{split}"] = frame[label.name].to_numpy()
        np.savez(work / "digits.npz", **arrays)
    else:
        for split, frame in frames.items():
            frame[columns].to_csv(work / f"{split}.csv", index=False)
    trainer = config.trainer
    return {
        "kind": "supervised", "label": label.name, "label_type": label.type, "inputs": inputs,
        "positive": getattr(label, "positive", None), "rows": {k: len(v) for k, v in frames.items()},
        "trainer": {"epochs": trainer.epochs, "batch_size": trainer.batch_size, "learning_rate": trainer.learning_rate,
                    "optimizer": trainer.optimizer, "weight_decay": trainer.weight_decay,
                    "lr_schedule": trainer.lr_schedule.model_dump(),
                    "early_stopping": trainer.early_stopping.model_dump() if trainer.early_stopping else None,
                    "restore_best": trainer.restore_best},
        "model": config.model.model_dump(mode="json"),
        "text": text,
    }


def _language_model(config) -> dict:
    return {"kind": "language_modeling", "train": str(config.data.train), "validation": config.data.split.validation,
            "model": config.model.model_dump(mode="json"), "trainer": config.trainer.model_dump(mode="json")}


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--config", required=True, help="kiln's config for the task as JSON (the harness applies overrides)")
    p.add_argument("--work", required=True)
    args = p.parse_args(argv)
    work = Path(args.work)
    work.mkdir(parents=True, exist_ok=True)
    raw = json.loads(args.config)
    config = load_task_config(raw)
    meta = _language_model(config) if task_name(config) == "language_modeling" else _supervised(config, work)
    write_json(work / "meta.json", meta)


if __name__ == "__main__":
    main()
