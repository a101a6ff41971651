"""Supervised training on streamed data (data.streaming): the preprocessing is fitted in one pass,
each epoch reads the training split again in chunks through a bounded, seeded shuffle buffer, and
validation and test are streamed for their metrics. The same TableTask interface, one Trainer."""

from __future__ import annotations

import time
from collections.abc import Iterator, Sequence
from itertools import islice
from typing import TYPE_CHECKING, Any

import pandas as pd
import torch

from kiln.data.preprocessor import Preprocessor, TensorData
from kiln.data.streaming import StreamingTable
from kiln.errors import KilnError
from kiln.features import Feature
from kiln.supervised.artifact import predict_logits
from kiln.supervised.task import TableTask, metrics_row
from kiln.training.distributed import all_sum, shard_rows

if TYPE_CHECKING:
    from kiln.training.trainer import Trainer


def shuffled(parts: Iterator[TensorData], buffer: int, generator: torch.Generator) -> Iterator[TensorData]:
    """Rows of `parts` in a seeded order that mixes up to `buffer` rows at a time: the pool is
    permuted whenever it holds `buffer` rows, and half of it stays to mix with the next chunks."""
    pool: TensorData | None = None
    for part in parts:
        pool = part if pool is None else TensorData.concat([pool, part])
        if len(pool) >= buffer:
            pool = pool.take(torch.randperm(len(pool), generator=generator))
            out = len(pool) - buffer // 2
            yield pool.take(slice(0, out))
            pool = pool.take(slice(out, None))
    if pool is not None and len(pool):
        yield pool.take(torch.randperm(len(pool), generator=generator))


def rebatch(parts: Iterator[TensorData], size: int) -> Iterator[TensorData]:
    """Batches of exactly `size` rows (the last one shorter) from pieces of any length."""
    held: list[TensorData] = []
    count = 0
    for part in parts:
        start = 0
        while start < len(part):
            piece = part.take(slice(start, start + size - count))
            held.append(piece)
            count += len(piece)
            start += len(piece)
            if count == size:
                yield TensorData.concat(held)
                held, count = [], 0
    if held:
        yield TensorData.concat(held)


class StreamTask(TableTask):
    """TableTask's epochs with the training split streamed: never more than the shuffle buffer
    (plus a read chunk) of transformed rows in memory."""

    def __init__(self, outputs: Sequence[Feature], pre: Preprocessor, table: StreamingTable, rows: int,
                 cfg: Any, data_cfg: Any) -> None:
        self.outputs, self.cfg, self.pre, self.table = list(outputs), cfg, pre, table
        self.rows = rows
        self.has_validation = "validation" in table.splits
        self.batch_size = rows if cfg.batch_size == "full" else min(int(cfg.batch_size), rows)
        self.shuffle, self.buffer = data_cfg.shuffle, data_cfg.shuffle_buffer
        self.names: dict[str, str] = {}  # each output's running metric (accuracy, mae)

    def setup(self, trainer: "Trainer") -> None:
        self.device = trainer.device

    def rounds(self) -> list[int]:
        batches = -(-self.rows // self.batch_size)
        return [-(-batches // self.cfg.gradient_accumulation)] * self.cfg.epochs

    def tensors(self, split: str) -> Iterator[TensorData]:
        for chunk in self.table.chunks(split):
            yield self.pre.transform(chunk, where=f"{split} split")

    def round_steps(self, round_index: int, first_step: int) -> Iterator[list[TensorData]]:
        parts = self.tensors("train")
        if self.shuffle:
            parts = shuffled(parts, self.buffer, torch.Generator().manual_seed(self.cfg.seed * 100_003 + round_index + 1))
        batches = rebatch(parts, self.batch_size)
        self.sums = {f.name: torch.zeros((), device=self.device) for f in self.outputs}
        while micro := list(islice(batches, self.cfg.gradient_accumulation)):
            yield [self._mine(batch) for batch in micro]

    def _mine(self, batch: TensorData) -> TensorData:
        rows, scale = shard_rows(torch.arange(len(batch)))
        mine = batch.take(rows).to(self.device) if scale != 1.0 else batch.to(self.device)
        if scale != 1.0:
            mine.grad_scale = scale  # type: ignore[attr-defined]  # read by the Trainer
        return mine

    def loss(self, net: torch.nn.Module, batch: TensorData) -> tuple[torch.Tensor, float]:
        logits = net(batch.inputs)
        loss = sum((f.loss(logits[f.name], batch.targets[f.name]) for f in self.outputs[1:]),
                   self.outputs[0].loss(logits[self.outputs[0].name], batch.targets[self.outputs[0].name]))
        if getattr(batch, "grad_scale", 1.0) == 0.0:
            return loss, 0.0
        for f in self.outputs:
            self.names[f.name], value = f.running_metric(logits[f.name].detach().float(), batch.targets[f.name])
            self.sums[f.name] += value
        return loss, len(batch)

    def end_round(self, trainer: "Trainer", round_index: int, round_time: float) -> dict[str, Any]:
        tick = time.perf_counter()
        row: dict[str, Any] = {"epoch": round_index + 1}
        for f in self.outputs:
            tag = "train" if len(self.outputs) == 1 else f"train_{f.name}"
            row[f"{tag}_{self.names[f.name]}"] = all_sum([float(self.sums[f.name])], trainer.device)[0] / self.rows
        row["epoch_time"] = round_time + time.perf_counter() - tick
        if self.has_validation:
            logits, targets = stream_logits(trainer.net, self, "validation")
            row.update(metrics_row(self.outputs, logits, targets, "validation"))
        return row


def stream_logits(net: torch.nn.Module, task: StreamTask, split: str) -> tuple[dict[str, torch.Tensor], dict[str, torch.Tensor]]:
    """Logits and targets of a whole streamed split (two small columns per output, not the inputs)."""
    logits: dict[str, list[torch.Tensor]] = {}
    targets: dict[str, list[torch.Tensor]] = {}
    for data in task.tensors(split):
        for name, value in predict_logits(net, data, task.cfg.eval_batch_size).items():
            logits.setdefault(name, []).append(value)
        for name, value in data.targets.items():
            targets.setdefault(name, []).append(value)
    if not targets:
        raise KilnError(f"the {split} split is empty after cleaning")
    return {k: torch.cat(v) for k, v in logits.items()}, {k: torch.cat(v) for k, v in targets.items()}


def split_metrics(net: torch.nn.Module, task: StreamTask, split: str) -> dict[str, Any]:
    """Model.metrics_for over a streamed split."""
    logits, targets = stream_logits(net, task, split)
    result = {f.name: f.metrics(logits[f.name], targets[f.name]) for f in task.outputs}
    return next(iter(result.values())) if len(result) == 1 else result


def fit_streaming(pre: Preprocessor, table: StreamingTable) -> tuple[int, pd.DataFrame]:
    """Fit the unfitted features in one pass over the training split; (training rows, a sample of
    the first chunk kept as the drift-monitoring reference)."""
    first: list[pd.DataFrame] = []
    rows = 0

    def seen(chunk: pd.DataFrame) -> None:
        nonlocal rows
        rows += len(chunk)
        if not first:
            first.append(chunk.head(10_000).copy())

    pre.fit_stream(table.chunks("train", on_chunk=seen))
    if rows == 0:
        raise KilnError(f"the training split of {table.cfg.train} is empty after cleaning")
    return rows, first[0]
