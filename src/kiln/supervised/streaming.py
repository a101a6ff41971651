"""Supervised training on streamed data (data.streaming): the preprocessing is fitted in one pass,
each epoch reads the training split again in chunks through a bounded, seeded shuffle buffer, and
validation and test are streamed for their metrics. The same TableTask interface, one Trainer.

Data-parallel (backend torchrun / ray): each worker reads only its share of every file
(StreamingTable.shard); rank 0 fits the preprocessing and counts each share's training rows, so
every worker knows every step's global batch and takes the same number of steps."""

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
from kiln.training.distributed import all_sum, from_main, gather_all

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
    (plus a read chunk) of transformed rows in memory.

    With W workers, worker r trains on local batches of its share of the rows (its part of
    `trainer.batch_size`, split as tensor_split does) and scales its loss by rows_here * W /
    rows_in_global_batch, so DDP's average is the global batch's mean. Every worker takes the
    steps of the largest share; one whose share is used up runs zero-weight steps (padding: no
    row is dropped or repeated, the last global batches are smaller)."""

    def __init__(self, outputs: Sequence[Feature], pre: Preprocessor, table: StreamingTable, rows: int,
                 cfg: Any, data_cfg: Any) -> None:
        self.outputs, self.cfg, self.pre, self.table = list(outputs), cfg, pre, table
        self.rows = rows  # training rows, all workers
        self.rank, self.world = table.shard
        self.has_validation = "validation" in table.splits
        self.batch_size = rows if cfg.batch_size == "full" else min(int(cfg.batch_size), rows)
        self.shuffle, self.buffer = data_cfg.shuffle, data_cfg.shuffle_buffer
        self.names: dict[str, str] = {}  # each output's running metric (accuracy, mae)
        self.shares = table.rows_by_worker or [rows]  # training rows in each worker's share
        if self.world > 1 and self.batch_size < self.world:
            raise KilnError(f"trainer.batch_size ({self.batch_size}) is smaller than backend.workers ({self.world})")
        empty = [r for r, n in enumerate(self.shares) if n == 0]
        if empty:
            raise KilnError(f"worker {empty[0]} of {self.world} has no training rows in its share of {data_cfg.train}: "
                            "use fewer backend.workers (or, for CSV, a smaller data.chunk_rows)")
        self.local = [len(part) for part in torch.arange(self.batch_size).tensor_split(self.world)]
        self.batches = max(-(-n // b) for n, b in zip(self.shares, self.local))  # micro-batches per epoch

    def setup(self, trainer: "Trainer") -> None:
        self.device = trainer.device

    def rounds(self) -> list[int]:
        return [-(-self.batches // self.cfg.gradient_accumulation)] * self.cfg.epochs

    def tensors(self, split: str) -> Iterator[TensorData]:
        for chunk in self.table.chunks(split):
            yield self.pre.transform(chunk, where=f"{split} split")

    def round_steps(self, round_index: int, first_step: int) -> Iterator[list[TensorData]]:
        parts = self.tensors("train")
        if self.shuffle:
            seed = self.cfg.seed * 100_003 + round_index + 1 + 1_000_003 * self.rank
            parts = shuffled(parts, self.buffer, torch.Generator().manual_seed(seed))
        batches = self._steps(rebatch(parts, self.local[self.rank]))
        self.sums = {f.name: torch.zeros((), device=self.device) for f in self.outputs}
        while micro := list(islice(batches, self.cfg.gradient_accumulation)):
            yield micro

    def _steps(self, batches: Iterator[TensorData]) -> Iterator[TensorData]:
        """This worker's micro-batches, padded with zero-weight ones to the epoch's common count."""
        if self.world == 1:
            yield from (batch.to(self.device) for batch in batches)
            return
        last: TensorData | None = None
        for step in range(self.batches):
            counts = [min(b, max(0, n - step * b)) for n, b in zip(self.shares, self.local)]
            batch = next(batches, None)
            if (len(batch) if batch is not None else 0) != counts[self.rank]:
                raise KilnError(f"{self.table.cfg.train} changed while training (worker {self.rank} read a different "
                                "number of rows than counted)")
            if batch is None:  # this share is used up: a zero-weight step keeps DDP's steps in line
                assert last is not None
                batch, scale = last.take(slice(0, 1)), 0.0
            else:
                scale = len(batch) * self.world / sum(counts)
            last = batch
            batch = batch.to(self.device)
            if scale != 1.0:
                batch.grad_scale = scale  # type: ignore[attr-defined]  # read by the Trainer
            yield batch

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
    """Logits and targets of a whole streamed split (two small columns per output, not the inputs).
    Data-parallel: each worker predicts its share and all of them get every share (each row once)."""
    logits: dict[str, list[torch.Tensor]] = {}
    targets: dict[str, list[torch.Tensor]] = {}
    for data in task.tensors(split):
        for name, value in predict_logits(net, data, task.cfg.eval_batch_size).items():
            logits.setdefault(name, []).append(value)
        for name, value in data.targets.items():
            targets.setdefault(name, []).append(value.cpu())
    if task.world > 1:
        shares = gather_all(({k: torch.cat(v) for k, v in logits.items()}, {k: torch.cat(v) for k, v in targets.items()}))
        logits, targets = {}, {}
        for share_logits, share_targets in shares:
            for name, value in share_logits.items():
                logits.setdefault(name, []).append(value)
            for name, value in share_targets.items():
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
    """Fit the unfitted features in one pass over the whole training split; (training rows, a sample
    of the first chunk kept as the drift-monitoring reference). Data-parallel, rank 0 alone reads,
    fits and counts the rows of each worker's share (`table.rows_by_worker`), and sends them all."""
    first: list[pd.DataFrame] = []
    owners = [0] * table.shard[1]

    def seen(chunk: pd.DataFrame) -> None:
        if not first:
            first.append(chunk.head(10_000).copy())

    if table.shard[0] == 0:
        pre.fit_stream(table.chunks("train", on_chunk=seen, whole=True, owners=owners))
    shared = from_main({"state": pre.state(), "owners": owners, "counts": table.counts} if table.shard[0] == 0 else None)
    if table.shard[0] != 0:
        pre.load_state(shared["state"])
        table.counts.update(shared["counts"])
    table.rows_by_worker = shared["owners"]
    rows = sum(shared["owners"])
    if rows == 0:
        raise KilnError(f"the training split of {table.cfg.train} is empty after cleaning")
    return rows, first[0] if first else pd.DataFrame()
