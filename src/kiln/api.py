"""The Python API: `train`, `load`, `cross_validate` — the CLI is a thin layer over these."""

from __future__ import annotations

import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import yaml

from kiln.config import RunConfig, load_config
from kiln.data import as_frame, clean_frame, kfold_indices, three_way_split
from kiln.data.splitting import split_indices
from kiln.data.preprocessor import Preprocessor
from kiln.errors import KilnError
from kiln.io import read_json, write_text
from kiln.model import Model, load
from kiln.resume import check_resume
from kiln.monitor.stats import write_training_stats
from kiln.pretrain.finetune import attach_tokenizer, load_encoder_weights
from kiln.pretrain.finetune import resolve as resolve_pretrained
from kiln.models import build_network
from kiln.runtime import configure_threads, seed_everything, select_device
from kiln.training.trainer import Callback, Trainer, checkpoint_epoch

__all__ = ["Model", "cross_validate", "load", "train"]
DataArg = pd.DataFrame | str | Path | None


def _stratify_label(config: RunConfig) -> str | None:
    if not config.data.split.stratify:
        return None
    for f in config.output_features:
        if f.type in ("binary", "category"):
            return f.name
    return None


def load_splits(config: RunConfig, data: DataArg = None) -> tuple[dict[str, pd.DataFrame], dict[str, Any]]:
    """Load, clean and split the data; returns frames by split name and a data report."""
    source = data if data is not None else config.data.train
    if source is None:
        raise KilnError("no training data: set data.train in the config or pass --data / data=")
    pre = Preprocessor(config)
    frame, report = clean_frame(as_frame(source), pre.inputs, pre.outputs, config.preprocessing.drop_duplicates, "training data")
    reports = {"train_file": report}
    if config.data.sample is not None and config.data.sample < 1.0:
        label = _stratify_label(config)
        kept, _ = split_indices(len(frame), 1.0 - config.data.sample, config.data.split.seed,
                                frame[label].astype(str) if label else None, "sample")
        frame = frame.iloc[kept].reset_index(drop=True)
        reports["sampled_rows"] = len(frame)
    extra: dict[str, pd.DataFrame] = {}
    for split in ("validation", "test"):
        path = getattr(config.data, split)
        if path:
            extra[split], reports[f"{split}_file"] = clean_frame(as_frame(path), pre.inputs, pre.outputs, False, f"{split} data")
    s = config.data.split
    frames = three_way_split(frame, s.validation, s.test, s.seed, _stratify_label(config), "test" in extra, "validation" in extra)
    frames.update(extra)
    reports["rows"] = {k: len(v) for k, v in frames.items()}
    return frames, reports


def _run_dir(output: str | Path | None, config: RunConfig) -> Path:
    if output is not None:
        return Path(output)
    name = config.output_features[0].name
    return Path("runs") / f"{name}-{time.strftime('%Y%m%d-%H%M%S')}"


def _from_model(config: RunConfig, model_dir: str | Path) -> tuple[RunConfig, Model]:
    """Continue training a saved model: its features, preprocessing and network; this config's trainer."""
    base = load(model_dir)
    merged = config.model_dump(mode="json")
    saved = base.config.model_dump(mode="json")
    for section in ("preprocessing", "input_features", "output_features", "model"):
        merged[section] = saved[section]
    return load_config(merged), base


def train(
    config: Any,
    data: DataArg = None,
    output: str | Path | None = None,
    resume: str | Path | None = None,
    from_model: str | Path | None = None,
    progress: bool = False,
    callbacks: Sequence[Callback] = (),
) -> Model:
    """Train from a config (path, dict or RunConfig) and write a run directory; returns the Model.

    `data` overrides `data.train` (a DataFrame or a path); `resume` continues a killed run in that
    directory; `from_model` continues training a saved model on new data with its saved preprocessing.
    A `task: language_modeling` config trains a GPT instead and returns a kiln.lm.LanguageModel.
    """
    from kiln.config.loader import config_task  # language models and pre-training have their own loops

    task = config_task(config)
    if task == "pretraining":
        from kiln.pretrain import pretrain

        return pretrain(config, output, resume, progress)  # type: ignore[return-value]
    if task == "language_modeling":
        from kiln.lm import train_lm

        return train_lm(config, data, output, resume, from_model, progress, callbacks)  # type: ignore[return-value]
    config = resolve_pretrained(load_config(config))
    if isinstance(data, (str, Path)):
        config.data.train = str(data)
        data = None
    base = None
    if from_model is not None:
        config, base = _from_model(config, from_model)
    run_dir = Path(resume) if resume is not None else _run_dir(output, config)
    if resume is not None:
        check_resume(run_dir, config)
    configure_threads(config.trainer.threads)
    seed_everything(config.trainer.seed)
    frames, report = load_splits(config, data)

    if base is not None:
        pre, net = base.preprocessor, base.net
    elif resume is not None and (run_dir / "model" / "model.json").is_file():
        pre = Preprocessor(config).load_state(read_json(run_dir / "model" / "model.json")["preprocessing"])
        net = build_network(config.model, pre.inputs, pre.outputs)
    else:
        pre, net = _fresh(config, frames["train"])
    tensors = {name: pre.transform(frame, where=f"{name} split") for name, frame in frames.items()}
    model = Model(config, pre, net)
    model.run_dir = run_dir

    run_dir.mkdir(parents=True, exist_ok=True)
    write_text(run_dir / "config.yaml", yaml.safe_dump(config.model_dump(mode="json"), sort_keys=False))
    if resume is None or not (run_dir / "model").is_dir():
        model.save(run_dir / "model")  # preprocessing state is fixed from here on (resume reuses it)
    ckpt = run_dir / "checkpoint"
    resuming = resume is not None and checkpoint_epoch(ckpt) is not None
    trainer = Trainer(net, pre.outputs, config.trainer, select_device(config.trainer.device), ckpt, callbacks, progress)
    model.history = trainer.fit(tensors["train"], tensors.get("validation"), resume=resuming)
    model.net = trainer.net
    model.metrics = {split: model.metrics_for(tensors[split]) for split in ("validation", "test") if split in tensors}
    report["stop_reason"] = trainer.stop_reason
    report["best_epoch"] = trainer.best["epoch"]
    _write_run(run_dir, model, report)
    write_training_stats(run_dir / "model", model, frames["train"])  # reference for drift monitoring
    return model


def _fresh(config: RunConfig, train: pd.DataFrame) -> tuple[Preprocessor, Any]:
    """Preprocessing fitted on the training split and a new network (from pre-trained weights if named)."""
    pre = Preprocessor(config)
    encoder = attach_tokenizer(config, pre)
    pre.fit(train)
    net = build_network(config.model, pre.inputs, pre.outputs)
    if encoder is not None:
        load_encoder_weights(net, config, encoder)
    return pre, net


def _write_run(run_dir: Path, model: Model, report: dict[str, Any]) -> None:
    from kiln.evaluate.run_files import write_run_files

    write_run_files(run_dir, model, report, extra_plots=lambda folder, _: _confusion_plots(folder, model.metrics))


def _confusion_plots(run_dir: Path, all_metrics: dict[str, Any]) -> list[Path]:
    """Confusion matrices of the test split (else validation), one per classification output."""
    from kiln.evaluate import plot_confusion_matrix

    images: list[Path] = []
    for split in ("test", "validation"):
        metrics = all_metrics.get(split, {})
        for name, cm_metrics in ([(None, metrics)] if "confusion_matrix" in metrics else metrics.items()):
            if isinstance(cm_metrics, dict) and "confusion_matrix" in cm_metrics:
                classes = list(cm_metrics["per_class"])
                suffix = f"_{name}" if name else ""
                images.append(plot_confusion_matrix(cm_metrics["confusion_matrix"], classes, run_dir / f"confusion_matrix{suffix}.png", f"Confusion matrix ({split}{', ' + name if name else ''})"))
        if metrics:
            break
    return images


def cross_validate(config: Any, folds: int = 5, data: DataArg = None, progress: bool = False) -> dict[str, Any]:
    """k-fold cross-validation: train on k-1 folds, score the held-out fold; mean ± std of every metric."""
    config = resolve_pretrained(load_config(config))
    if folds < 2:
        raise KilnError(f"--folds must be at least 2 (got {folds})")
    if isinstance(data, (str, Path)):
        config.data.train, data = str(data), None
    configure_threads(config.trainer.threads)
    frames, _ = load_splits(config.model_copy(update={"data": config.data.model_copy(update={
        "split": config.data.split.model_copy(update={"validation": 0.0, "test": 0.0}), "test": None, "validation": None})}), data)
    frame = frames["train"]
    label = _stratify_label(config)
    scores: list[dict[str, float]] = []
    for k, (train_idx, held_idx) in enumerate(kfold_indices(frame, folds, config.data.split.seed, label)):
        seed_everything(config.trainer.seed + k)
        parts = three_way_split(frame.iloc[train_idx].reset_index(drop=True), config.data.split.validation, 0.0,
                                config.data.split.seed + k, label)
        pre, net = _fresh(config, parts["train"])
        tensors = {n: pre.transform(f) for n, f in parts.items()}
        trainer = Trainer(net, pre.outputs, config.trainer, select_device(config.trainer.device), progress=progress)
        trainer.fit(tensors["train"], tensors.get("validation"))
        model = Model(config, pre, trainer.net)
        scores.append(_flat(model.metrics_for(pre.transform(frame.iloc[held_idx], where=f"fold {k + 1}"))))
    table = pd.DataFrame(scores)
    return {
        "folds": folds,
        "metrics": {col: {"mean": float(table[col].mean()), "std": float(table[col].std(ddof=1)), "per_fold": table[col].tolist()}
                    for col in table.columns},
    }


def _flat(metrics: dict[str, Any], prefix: str = "") -> dict[str, float]:
    out: dict[str, float] = {}
    for key, value in metrics.items():
        if key in ("per_class", "confusion_matrix"):
            continue
        if isinstance(value, dict):
            out.update(_flat(value, f"{prefix}{key}."))
        elif isinstance(value, (int, float, np.floating)) and value is not None:
            out[f"{prefix}{key}"] = float(value)
    return out


