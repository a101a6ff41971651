"""The supervised task: load, clean and split a table, fit the preprocessing, and train a network
in epochs over its tensors on kiln's one Trainer; k-fold cross-validation on the same pieces."""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
import torch

from kiln.data import as_frame, clean_frame, kfold_indices, three_way_split
from kiln.data.preprocessor import Preprocessor, TensorData
from kiln.data.splitting import column_split, split_indices
from kiln.data.streaming import StreamingTable, size_mb
from kiln.errors import KilnError
from kiln.evaluate.plots import plot_confusion_matrix
from kiln.features import Feature
from kiln.models import build_network
from kiln.monitor.stats import PREDICTION_ROWS, write_training_stats
from kiln.runtime import configure_threads, seed_everything, select_device
from kiln.supervised.artifact import Model, predict_logits
from kiln.supervised.config import SupervisedConfig, load_supervised_config
from kiln.supervised.frozen import CACHE_DIR, cache_frozen
from kiln.supervised.finetune import attach_tokenizer, load_encoder_weights, resolve_pretrained
from kiln.supervised.prepared import PreparedData, data_key
from kiln.training import Run, Trainer, load_run
from kiln.training.distributed import (all_sum, gather_all, in_worker, is_main, launch_run, rank_and_world, shard_rows,
                                      weights_digest)

if TYPE_CHECKING:
    from kiln.training.trainer import Trainer as TrainerType

DataArg = pd.DataFrame | str | Path | PreparedData | None


LENGTH_WINDOW = 50  # batches whose rows are sorted by length together
BLOCK_BYTES = 16 * 2**20  # rows gathered at once for the coming batches, which are then slices of them


def token_counts(data: TensorData) -> torch.Tensor:
    """Per row, the real (non-padding) tokens summed over the token-id inputs (2-D integer tensors)."""
    ids = [x for x in data.inputs.values() if x.dim() == 2 and not x.is_floating_point()]
    if not ids:
        raise KilnError("data.batch_by_length needs a text input with encoder: sequence")
    return sum((x != 0).sum(1) for x in ids).cpu()  # type: ignore[return-value]


def length_grouped(order: torch.Tensor, lengths: torch.Tensor, size: int, generator: torch.Generator) -> torch.Tensor:
    """`order` regrouped so that each batch holds rows of similar length (less padding to compute over once
    the encoder cuts a batch to its longest row): windows of LENGTH_WINDOW batches are sorted by length and
    cut into batches, and the batches are then shuffled."""
    batches: list[torch.Tensor] = []
    for start in range(0, len(order), size * LENGTH_WINDOW):
        window = order[start : start + size * LENGTH_WINDOW]
        batches += list(window[torch.argsort(lengths[window], stable=True)].split(size))
    return torch.cat([batches[i] for i in torch.randperm(len(batches), generator=generator)])


class EpochLogits:
    """The training logits and row indices seen in one epoch, written into buffers of the split's size.
    Keeping each batch's small tensors in lists until the epoch ends instead pins them between the
    large blocks every step frees, so the heap grew all epoch: on all SST-2 rows with the n-gram bag
    (a 64 x 720 x 16 lookup a step) peak RSS rose by about 2 GB an epoch (docs/training.md)."""

    def __init__(self, capacity: int) -> None:
        self.capacity, self.count = capacity, 0
        self.logits: dict[str, torch.Tensor] = {}
        self.rows: torch.Tensor | None = None

    def add(self, rows: torch.Tensor, logits: dict[str, torch.Tensor]) -> None:
        if self.rows is None:
            self.rows = torch.empty(self.capacity, dtype=rows.dtype, device=rows.device)
            self.logits = {name: torch.empty((self.capacity, *value.shape[1:]), dtype=value.dtype, device=value.device)
                           for name, value in logits.items()}
        end = self.count + len(rows)
        self.rows[self.count : end] = rows
        for name, value in logits.items():
            self.logits[name][self.count : end] = value.detach()
        self.count = end

    def seen(self) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """(row indices, logits per output) of the rows trained on so far this epoch."""
        if self.rows is None:
            return torch.empty(0, dtype=torch.long), {}
        return self.rows[: self.count], {name: value[: self.count] for name, value in self.logits.items()}


class TableTask:
    """Epochs over fixed tensors: a seeded permutation per epoch, `gradient_accumulation`
    mini-batches per optimizer step; the training metric is computed once per epoch from the
    logits seen while training (cheaper than per batch)."""

    unit = "epoch"

    def __init__(self, outputs: Sequence[Feature], train: TensorData, validation: TensorData | None, cfg: Any,
                 shuffle: bool = True, by_length: bool = False) -> None:
        self.outputs, self.cfg, self.shuffle = list(outputs), cfg, shuffle
        self.train, self.validation = train, validation
        self.has_validation = validation is not None
        self.batch_size = len(train) if cfg.batch_size == "full" else min(int(cfg.batch_size), len(train))
        self.lengths = token_counts(train) if by_length else None

    def setup(self, trainer: "TrainerType") -> None:
        self.device = trainer.device
        self.train = self.train.to(trainer.device)
        self.validation = self.validation.to(trainer.device) if self.validation is not None else None

    def rounds(self) -> list[int]:
        batches = math.ceil(len(self.train) / self.batch_size)
        return [math.ceil(batches / self.cfg.gradient_accumulation)] * self.cfg.epochs

    def round_steps(self, round_index: int, first_step: int) -> Iterator[list[TensorData]]:
        data, size, accumulate = self.train, self.batch_size, self.cfg.gradient_accumulation
        generator = torch.Generator().manual_seed(self.cfg.seed * 100_003 + round_index + 1)
        self.order = torch.randperm(len(data), generator=generator) if self.shuffle else torch.arange(len(data))
        if self.lengths is not None:
            self.order = length_grouped(self.order, self.lengths, size, generator)
        self.epoch_logits = EpochLogits(len(data))
        order = self.order.to(self.device)
        starts = range(0, len(data), size)
        batches = self._blocks(order) if rank_and_world()[1] == 1 else (self._batch(order[s : s + size]) for s in starts)
        for i in range(0, len(starts), accumulate):
            yield [next(batches) for _ in starts[i : i + accumulate]]

    def _blocks(self, order: torch.Tensor) -> Iterator[TensorData]:
        """The epoch's batches in `order`: the rows of many batches gathered in one indexing per tensor
        (up to BLOCK_BYTES; a small table's whole epoch), each batch a slice of them. Same values as
        indexing every batch, a ninth of the indexing calls for nine input and target tensors."""
        size = self.batch_size
        per_row = sum(t[:1].numel() * t.element_size() for t in (*self.train.inputs.values(), *self.train.targets.values()))
        span = max(1, BLOCK_BYTES // max(per_row * size, 1)) * size
        for start in range(0, len(order), span):
            rows = order[start : start + span]
            block = self.train.take(rows)
            for s in range(0, len(rows), size):
                batch = block.take(slice(s, s + size))
                batch.rows = rows[s : s + size]  # type: ignore[attr-defined]  # where its logits go in the epoch's buffer
                yield batch

    def _batch(self, rows: torch.Tensor) -> TensorData:
        """The rows of a global batch this rank trains on (data-parallel: its share of them)."""
        mine, scale = shard_rows(rows)
        batch = self.train.take(mine)
        batch.rows = mine  # type: ignore[attr-defined]  # where its logits go in the epoch's buffer
        if scale != 1.0:
            batch.grad_scale = scale  # type: ignore[attr-defined]  # read by the Trainer
        return batch

    def loss(self, net: torch.nn.Module, batch: TensorData) -> tuple[torch.Tensor, float]:
        logits = net(batch.inputs)
        first = self.outputs[0]
        loss = first.loss(logits[first.name], batch.targets[first.name])
        for f in self.outputs[1:]:
            loss = loss + f.loss(logits[f.name], batch.targets[f.name])
        if getattr(batch, "grad_scale", 1.0) == 0.0:  # a placeholder row on a rank with no rows in this batch
            return loss, 0.0
        self.epoch_logits.add(batch.rows, {f.name: logits[f.name] for f in self.outputs})
        return loss, len(batch.targets[first.name])

    def end_round(self, trainer: "TrainerType", round_index: int, round_time: float) -> dict[str, Any]:
        tick = time.perf_counter()
        row: dict[str, Any] = {"epoch": round_index + 1}
        rows, seen = self.epoch_logits.seen()
        for f in self.outputs:
            name, value = f.running_metric(seen[f.name].float(), self.train.targets[f.name][rows])
            tag = "train" if len(self.outputs) == 1 else f"train_{f.name}"
            row[f"{tag}_{name}"] = all_sum([float(value)], trainer.device)[0] / len(self.train)
        self.epoch_logits = EpochLogits(0)
        row["epoch_time"] = round_time + time.perf_counter() - tick  # the training pass, before validation
        if self.validation is not None:
            row.update(evaluate_split(trainer.net, self.outputs, self.validation, self.cfg.eval_batch_size, "validation"))
        return row


def evaluate_split(net: torch.nn.Module, outputs: Sequence[Feature], data: TensorData, batch_size: int, prefix: str) -> dict[str, float]:
    """Loss and scalar metrics over a whole split, as flat history columns."""
    return metrics_row(outputs, predict_logits(net, data, batch_size), data.targets, prefix)


def metrics_row(outputs: Sequence[Feature], logits: dict[str, torch.Tensor], targets: dict[str, torch.Tensor],
                prefix: str) -> dict[str, float]:
    """Flat history columns (`validation_loss`, `validation_accuracy`, ...) from a split's logits."""
    row: dict[str, float] = {}
    total = 0.0
    for feature in outputs:
        metrics = feature.metrics(logits[feature.name], targets[feature.name].cpu())
        total += metrics["loss"]
        tag = prefix if len(outputs) == 1 else f"{prefix}_{feature.name}"
        row.update({f"{tag}_{k}": v for k, v in metrics.items() if isinstance(v, (int, float)) and k != "loss"})
        if len(outputs) > 1:
            row[f"{tag}_loss"] = metrics["loss"]
    row[f"{prefix}_loss"] = total
    return row


# -- data -------------------------------------------------------------------------------------
def stratify_label(config: SupervisedConfig) -> str | None:
    if not config.data.split.stratify:
        return None
    return next((f.name for f in config.output_features if f.type in ("binary", "category")), None)


def load_splits(config: SupervisedConfig, data: DataArg = None) -> tuple[dict[str, pd.DataFrame], dict[str, Any]]:
    """Load, clean and split the data; returns frames by split name and a data report."""
    source = data if data is not None else config.data.train
    if source is None:
        raise KilnError("no training data: set data.train in the config or pass --data / data=")
    pre = Preprocessor(config)
    s = config.data.split
    keep = [c for c in (s.column, s.group) if c]
    frame, report = clean_frame(as_frame(source), pre.inputs, pre.outputs, config.preprocessing.drop_duplicates, "training data", keep)
    reports = {"train_file": report}
    if config.data.sample is not None and config.data.sample < 1.0:
        label = stratify_label(config)
        kept, _ = split_indices(len(frame), 1.0 - config.data.sample, config.data.split.seed,
                                frame[label].astype(str) if label else None, "sample")
        frame = frame.iloc[kept].reset_index(drop=True)
        reports["sampled_rows"] = len(frame)
    extra: dict[str, pd.DataFrame] = {}
    for split in ("validation", "test"):
        path = getattr(config.data, split)
        if path:
            extra[split], reports[f"{split}_file"] = clean_frame(as_frame(path), pre.inputs, pre.outputs, False, f"{split} data",
                                                                 [s.group] if s.group else ())
    if s.column:
        given = column_split(frame, s.column, "training data")
        extra = {**{k: v.reset_index(drop=True) for k, v in given.items() if k != "train"}, **extra}
        frame = given["train"].reset_index(drop=True)
    frames = three_way_split(frame, s.validation, s.test, s.seed, stratify_label(config), "test" in extra, "validation" in extra,
                             s.group)
    frames.update(extra)
    reports["rows"] = {k: len(v) for k, v in frames.items()}
    return frames, reports


def fit_preprocessor(config: SupervisedConfig, train: pd.DataFrame | StreamingTable,
                     later: Sequence[pd.DataFrame] = ()) -> tuple[Preprocessor, Any]:
    """Preprocessing fitted on the training split (a frame, or streamed in one pass), and the
    pre-trained encoder weights when `model.pretrained` names a run. `later`: the splits to be transformed
    next, in that order (Preprocessor.fit)."""
    pre = Preprocessor(config)
    source = attach_tokenizer(config, pre)
    if isinstance(train, StreamingTable):
        from kiln.supervised.streaming import fit_streaming

        pre.streamed = fit_streaming(pre, train)  # type: ignore[attr-defined]  # (rows, reference sample)
    else:
        pre.fit(train, later)
    return pre, source


def new_network(config: SupervisedConfig, pre: Preprocessor, source: Any = None) -> Any:
    """A freshly initialised network for fitted preprocessing (from pre-trained weights if given)."""
    net = build_network(config.model, pre.inputs, pre.outputs)
    if source is not None:
        load_encoder_weights(net, config, source)
    return net


def fresh(config: SupervisedConfig, train: pd.DataFrame | StreamingTable,
          later: Sequence[pd.DataFrame] = ()) -> tuple[Preprocessor, Any]:
    """Preprocessing fitted on the training split and a new network (from pre-trained weights if named)."""
    pre, source = fit_preprocessor(config, train, later)
    return pre, new_network(config, pre, source)


def later_splits(frames: dict[str, pd.DataFrame]) -> list[pd.DataFrame]:
    """The splits transformed after fitting, in order (none in a data-parallel worker: its cores are taken)."""
    return [] if in_worker() else [frame for name, frame in frames.items() if name != "train"]


def prepare_data(config: Any, data: DataArg = None) -> PreparedData:
    """Load, clean, split and encode once; `train(config, data=prepared)` then skips all of it."""
    config = resolve_pretrained(load_supervised_config(config))
    if isinstance(data, (str, Path)):
        config.data.train, data = str(data), None
    if data is None:
        stream_if_large(config)
    frames, report = load_splits(config, data)
    pre, source = fit_preprocessor(config, frames["train"], later_splits(frames))
    tensors = {name: pre.transform(frame, where=f"{name} split") for name, frame in frames.items()}
    return PreparedData(data_key(config), frames, report, pre, tensors, source)


def prepared_key(config: Any) -> str:
    """The key of the data `prepare_data(config)` would give: configs with equal keys can share it."""
    return data_key(resolve_pretrained(load_supervised_config(config)))


# -- train ------------------------------------------------------------------------------------
def stream_if_large(config: SupervisedConfig) -> None:
    """Switch to data.streaming when the training file is larger than data.stream_above_mb (logged once)."""
    cfg = config.data
    if cfg.streaming or cfg.stream_above_mb is None or cfg.sample is not None or not cfg.train or cfg.train.startswith("sklearn:"):
        return
    size = size_mb(cfg.train)
    if size > cfg.stream_above_mb:
        cfg.streaming = True
        logging.getLogger("kiln").warning("data.train is %.3g MiB, above data.stream_above_mb (%g): streaming it "
                                          "(data.streaming: true) instead of reading it into memory", size, cfg.stream_above_mb)


def _from_model(config: SupervisedConfig, model_dir: str | Path) -> tuple[SupervisedConfig, Model]:
    """Continue training a saved model: its features, preprocessing and network; this config's trainer."""
    base = Model.load(model_dir)
    merged = config.model_dump(mode="json")
    saved = base.config.model_dump(mode="json")
    for section in ("preprocessing", "input_features", "output_features", "model"):
        merged[section] = saved[section]
    return load_supervised_config(merged), base


def train(
    config: Any,
    data: DataArg = None,
    output: str | Path | None = None,
    resume: str | Path | None = None,
    from_model: str | Path | None = None,
    progress: bool | str = False,
    callbacks: Sequence[Any] = (),
) -> Model:
    """Train a supervised model and write its run directory; see kiln.train."""
    config = resolve_pretrained(load_supervised_config(config))
    if isinstance(data, (str, Path)):
        config.data.train, data = str(data), None
    if data is None:
        stream_if_large(config)
    if config.backend.type != "local" and not in_worker():
        return _train_data_parallel(config, data, output, resume, from_model, progress, callbacks)
    main = is_main()
    prepared = data if isinstance(data, PreparedData) else None
    if prepared is not None and (resume is not None or from_model is not None):
        raise KilnError("prepared data is for fresh runs; it cannot be combined with resume or from_model")
    base = None
    if from_model is not None:
        config, base = _from_model(config, from_model)
    run = Run(config, output, resume, config.output_features[0].name, load_supervised_config)
    device = run.start(config.trainer)
    streaming = config.data.streaming
    if streaming and data is not None:
        raise KilnError("data.streaming reads data.train from a file; pass a path, not a DataFrame")
    saved = run.saved_meta()
    if prepared is not None:
        prepared.check(config)
        frames, report, pre = prepared.frames, dict(prepared.report), prepared.preprocessor
        net = new_network(config, pre, prepared.source)
    else:
        frames, report = ({}, {}) if streaming else load_splits(config, data)
        if streaming:
            cleaner = Preprocessor(config)  # cleaning is stateless: any instance's features will do
            table = StreamingTable(config.data, cleaner.inputs, cleaner.outputs, shard=rank_and_world())  # each worker reads its share
        if base is not None:
            pre, net = base.preprocessor, base.net
        elif saved is not None:
            pre = Preprocessor(config).load_state(saved["preprocessing"])
            net = build_network(config.model, pre.inputs, pre.outputs)
        else:
            pre, net = fresh(config, table) if streaming else fresh(config, frames["train"], later_splits(frames))
    if streaming:  # preprocessing fitted in one pass; epochs, validation and test read the files again
        from kiln.supervised.streaming import StreamTask, fit_streaming, split_metrics

        rows, frames["train"] = getattr(pre, "streamed", None) or fit_streaming(pre, table)  # one pass: fit or count
        report = {"streaming": True, "train_rows": rows, **table.counts, "duplicates_dropped": "not checked when streaming"}
        task: TableTask = StreamTask(pre.outputs, pre, table, rows, config.trainer, config.data)
    else:
        tensors = prepared.tensors if prepared is not None else \
            {name: pre.transform(frame, where=f"{name} split") for name, frame in frames.items()}
    model = Model(config, pre, net)
    if main:  # data-parallel workers other than rank 0 write nothing
        run.create()
        if saved is None:
            # the preprocessing state is fixed from here on (a resume reads it); the weights come when the run ends
            model.save(run.model_dir, weights=False)
    frozen = None if streaming else cache_frozen(config, net, tensors, device, run.dir / CACHE_DIR if main else None,
                                                   prepared.pooled if prepared is not None else None)
    if not streaming:
        if frozen is not None:  # a frozen encoder ran once per row: train the trunk and heads on its pooled vectors
            tensors, report["frozen_encoder"] = frozen.tensors, frozen.report
        task = TableTask(pre.outputs, tensors["train"], tensors.get("validation"), config.trainer, config.data.shuffle,
                         config.data.batch_by_length and frozen is None)
    trainer = Trainer(frozen.net if frozen else net, config.trainer, device, run.checkpoint_dir, callbacks, progress)
    model.history = trainer.fit(task, resume=run.resume_from_checkpoint)
    model.net = net.to(device) if frozen else trainer.net
    if streaming:  # every worker streams its share of validation and test
        model.metrics = {split: split_metrics(model.net, task, split) for split in ("validation", "test") if split in table.splits}
        report["rows_read_per_worker"] = gather_all(dict(table.rows_read))
        report["train_rows_per_worker"] = table.rows_by_worker
    if trainer.world > 1:  # DDP keeps the workers' weights equal: recorded as a check
        report["weights_sha256_per_worker"] = gather_all(weights_digest(trainer.net))
    if not main:
        return model
    scorer = Model(config, pre, trainer.net)  # the network trained on what `tensors` hold (cached vectors or not)
    if not streaming:
        model.metrics = {split: scorer.metrics_for(tensors[split]) for split in ("validation", "test") if split in tensors}
    report["stop_reason"] = trainer.stop_reason
    report["best_epoch"] = trainer.monitor.best_round
    if trainer.world > 1:
        report["backend"] = {"type": config.backend.type, "workers": trainer.world}
    run.finish(model, report, extra_plots=lambda folder, _: _confusion_plots(folder, model.metrics))
    if frozen:  # the cached training rows, not a second pass through the encoder
        cached = lambda rows: scorer.predict_tensors(tensors["train"].take(torch.from_numpy(rows.index.to_numpy().copy())), rows.index)  # noqa: E731
    elif not streaming and len(frames["train"]) <= PREDICTION_ROWS:  # all rows: the encoded split, not a second encoding
        cached = lambda rows: scorer.predict_tensors(tensors["train"], rows.index)  # noqa: E731
    else:
        cached = None
    write_training_stats(run.model_dir, model, frames["train"], cached)  # reference for drift monitoring
    return model


def _train_data_parallel(config: SupervisedConfig, data: DataArg, output: str | Path | None, resume: str | Path | None,
                         from_model: str | Path | None, progress: bool | str, callbacks: Sequence[Any]) -> Model:
    """Run `train` on every worker of `config.backend` (rank 0 writes the run directory), then load its result."""
    run_dir = Run(config, output, resume, config.output_features[0].name, load_supervised_config).dir.resolve()  # checks a resume first
    launch_run(config, run_dir, resume is not None, _worker_train, (data, from_model, progress), callbacks)
    return load_run(Model, run_dir)


def _worker_train(config: SupervisedConfig, where: dict[str, str], data: DataArg, from_model: str | Path | None,
                  progress: bool | str) -> None:
    """One data-parallel worker (kiln.training.distributed.launch): the local training path."""
    train(config, data, output=where.get("output"), resume=where.get("resume"), from_model=from_model, progress=progress)


def _confusion_plots(run_dir: Path, all_metrics: dict[str, Any]) -> list[Path]:
    """Confusion matrices of the test split (else validation), one per classification output."""
    images: list[Path] = []
    for split in ("test", "validation"):
        metrics = all_metrics.get(split, {})
        for name, cm_metrics in ([(None, metrics)] if "confusion_matrix" in metrics else metrics.items()):
            if isinstance(cm_metrics, dict) and "confusion_matrix" in cm_metrics:
                classes = list(cm_metrics["per_class"])
                suffix = f"_{name}" if name else ""
                images.append(plot_confusion_matrix(cm_metrics["confusion_matrix"], classes, run_dir / f"confusion_matrix{suffix}.svg",
                                                    f"Confusion matrix ({split}{', ' + name if name else ''})"))
        if metrics:
            break
    return images


# -- cross-validation -------------------------------------------------------------------------
def cross_validate(config: Any, folds: int = 5, data: DataArg = None, progress: bool | str = False) -> dict[str, Any]:
    """k-fold cross-validation: train on k-1 folds, score the held-out fold; mean ± std of every metric."""
    config = resolve_pretrained(load_supervised_config(config))
    if folds < 2:
        raise KilnError(f"--folds must be at least 2 (got {folds})")
    if isinstance(data, (str, Path)):
        config.data.train, data = str(data), None
    configure_threads(config.trainer.threads)
    whole = config.model_copy(update={"data": config.data.model_copy(update={
        "split": config.data.split.model_copy(update={"validation": 0.0, "test": 0.0, "column": None}), "test": None, "validation": None})})
    frame = load_splits(whole, data)[0]["train"]
    label = stratify_label(config)
    group = config.data.split.group
    device = select_device(config.trainer.device)
    scores: list[dict[str, float]] = []
    for k, (train_idx, held_idx) in enumerate(kfold_indices(frame, folds, config.data.split.seed, label, group)):
        seed_everything(config.trainer.seed + k)
        parts = three_way_split(frame.iloc[train_idx].reset_index(drop=True), config.data.split.validation, 0.0,
                                config.data.split.seed + k, label, group=group)
        pre, net = fresh(config, parts["train"])
        tensors = {n: pre.transform(f) for n, f in parts.items()}
        tensors["held"] = pre.transform(frame.iloc[held_idx], where=f"fold {k + 1}")
        frozen = cache_frozen(config, net, tensors, device)
        tensors = frozen.tensors if frozen else tensors
        trainer = Trainer(frozen.net if frozen else net, config.trainer, device, progress=progress)
        trainer.fit(TableTask(pre.outputs, tensors["train"], tensors.get("validation"), config.trainer))
        model = Model(config, pre, trainer.net)
        scores.append(_flat(model.metrics_for(tensors["held"])))
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
