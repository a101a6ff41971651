"""Larger-than-memory tables (data.streaming): Parquet files or directories and CSV files read in
chunks through pyarrow.dataset, cleaned chunk by chunk, and split by a stable hash of a row key
(a column, or the row's number in the file) so no split needs the data in memory."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from kiln.data.cleaning import check_columns, clean_features, source_columns
from kiln.errors import KilnError
from kiln.features import Feature
from kiln.features.base import is_missing

SPLITS = ("train", "validation", "test")


def size_mb(path: str | Path) -> float:
    """On-disk size of a file, or of every file under a directory, in MiB (0 when it does not exist)."""
    path = Path(path)
    if path.is_dir():
        return sum(f.stat().st_size for f in path.rglob("*") if f.is_file()) / 2**20
    return path.stat().st_size / 2**20 if path.is_file() else 0.0


def open_dataset(path: str | Path) -> Any:
    """A pyarrow dataset over a Parquet file or directory, or a CSV/TSV file."""
    import pyarrow.dataset as ds

    path = Path(path)
    if not path.exists():
        raise KilnError(f"data file not found: {path} (current directory: {Path.cwd()})")
    suffix = path.suffix.lower()
    try:
        if path.is_dir() or suffix == ".parquet":
            return ds.dataset(str(path), format="parquet")
        if suffix in (".csv", ".tsv"):
            import pyarrow.csv as pacsv

            parse = pacsv.ParseOptions(delimiter="\t" if suffix == ".tsv" else ",")
            return ds.dataset(str(path), format=ds.CsvFileFormat(parse_options=parse))
    except Exception as exc:  # noqa: BLE001  (pyarrow's errors: ArrowInvalid, OSError, ...)
        raise KilnError(f"cannot read {path}: {str(exc).splitlines()[0]}") from None
    raise KilnError(f"data.streaming reads Parquet files or directories and .csv/.tsv files, not {path.name}")


def read_chunks(path: str | Path, columns: Sequence[str], chunk_rows: int) -> Iterator[pd.DataFrame]:
    """The named columns of a table, `chunk_rows` rows at a time, in file order."""
    for _, _, chunk in read_numbered(path, columns, chunk_rows):
        yield chunk


def read_numbered(path: str | Path, columns: Sequence[str], chunk_rows: int,
                  shard: tuple[int, int] = (0, 1)) -> Iterator[tuple[int, int, pd.DataFrame]]:
    """The named columns of a table, `chunk_rows` rows at a time, in file order, as (file row number
    of the chunk's first row, the chunk's number in the file, chunk). With `shard` (rank, workers)
    only that worker's share is read: for Parquet a contiguous 1/workers of the rows (only the row
    groups that hold them are read), for CSV every workers-th record batch (pyarrow still parses the
    whole text, but converts only these). `owners_of` says which worker reads a row."""
    import pyarrow.dataset as ds

    dataset = open_dataset(path)
    check_columns(dataset.schema.names, columns, str(path))
    try:
        if isinstance(dataset.format, ds.ParquetFileFormat):
            yield from _parquet_chunks(dataset, list(columns), chunk_rows, shard)
            return
        row = 0
        rank, workers = shard
        for index, batch in enumerate(dataset.to_batches(columns=list(columns), batch_size=chunk_rows,
                                                          batch_readahead=2, fragment_readahead=1)):
            if batch.num_rows and index % workers == rank:
                yield row, index, batch.to_pandas()
            row += batch.num_rows
    except KilnError:
        raise
    except Exception as exc:  # noqa: BLE001
        raise KilnError(f"cannot read {path}: {str(exc).splitlines()[0]}") from None


def _parquet_chunks(dataset: Any, columns: list[str], chunk_rows: int,
                    shard: tuple[int, int]) -> Iterator[tuple[int, int, pd.DataFrame]]:
    """Parquet row groups in file order; a shard reads rows [total*rank/workers, total*(rank+1)/workers)."""
    import pyarrow.dataset as ds

    pieces = [piece for fragment in dataset.get_fragments() for piece in fragment.split_by_row_group()]
    sizes = [piece.row_groups[0].num_rows for piece in pieces]
    total = sum(sizes)
    rank, workers = shard
    low, high = total * rank // workers, total * (rank + 1) // workers
    # bounded memory: little read-ahead, and no pre-buffering (it keeps a whole Parquet file's column chunks)
    options = ds.ParquetFragmentScanOptions(pre_buffer=False)
    start, number = 0, 0
    for piece, size in zip(pieces, sizes):
        first, start = start, start + size
        if start <= low or first >= high:
            continue  # another worker's row group: not read
        row = first
        for batch in piece.to_batches(columns=columns, batch_size=chunk_rows, batch_readahead=2,
                                      fragment_scan_options=options):
            lo, hi = max(row, low), min(row + batch.num_rows, high)
            if hi > lo:
                yield lo, number, batch.slice(lo - row, hi - lo).to_pandas()
                number += 1
            row += batch.num_rows


def owners_of(rows: np.ndarray, chunk: int, total: int | None, workers: int) -> np.ndarray:
    """The worker that reads each row (file row numbers `rows`, of chunk number `chunk`) when the
    reading is divided `workers` ways: by row range for Parquet (`total` rows), by chunk for CSV."""
    if total is None:
        return np.full(len(rows), chunk % workers, dtype=np.int64)
    return ((rows.astype(np.int64) + 1) * workers - 1) // max(total, 1)


def parquet_rows(path: str | Path) -> int | None:
    """Rows of a Parquet file or directory from its metadata (None for CSV)."""
    import pyarrow.dataset as ds

    dataset = open_dataset(path)
    return int(dataset.count_rows()) if isinstance(dataset.format, ds.ParquetFileFormat) else None


def _mix(values: np.ndarray, seed: int) -> np.ndarray:
    """splitmix64 of uint64 values: a stable, well-spread hash."""
    with np.errstate(over="ignore"):
        z = values.astype(np.uint64) + np.uint64((seed * 0x9E3779B97F4A7C15) % 2**64)
        z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
        z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
        return z ^ (z >> np.uint64(31))


def split_of(keys: pd.Series | np.ndarray, seed: int, validation: float, test: float) -> np.ndarray:
    """0 (train), 1 (validation) or 2 (test) for each row key; depends on the key and seed only."""
    if isinstance(keys, pd.Series):
        raw = pd.util.hash_pandas_object(keys.astype(str), index=False).to_numpy()  # fixed hash key: stable across runs
    else:
        raw = np.asarray(keys, dtype=np.uint64)
    unit = (_mix(raw, seed) >> np.uint64(11)).astype(np.float64) / float(2**53)
    return np.where(unit < test, 2, np.where(unit < test + validation, 1, 0)).astype(np.int8)


def clean_chunk(frame: pd.DataFrame, features: Sequence[Feature], outputs: Sequence[Feature],
                counts: dict[str, int]) -> pd.DataFrame:
    """Per-chunk cleaning: type coercion, and rows without a label dropped (counted in `counts`).
    Duplicates are not dropped when streaming (that needs every row at once)."""
    cleaned = clean_features(frame, features)
    for name, (_, changes) in cleaned.items():
        if changes.get("coerced_non_numeric"):
            key = f"coerced_non_numeric.{name}"
            counts[key] = counts.get(key, 0) + changes["coerced_non_numeric"]
    no_label = np.zeros(len(frame), dtype=bool)
    for feature in outputs:
        no_label |= is_missing(cleaned[feature.name][0]).to_numpy()
    if no_label.any():
        counts["rows_missing_label_dropped"] = counts.get("rows_missing_label_dropped", 0) + int(no_label.sum())
        frame = frame.loc[~no_label]
    return frame.reset_index(drop=True)


class StreamingTable:
    """The splits of a config's data as repeatable streams of cleaned pandas chunks.

    `data.train` is split by `split_of` over `data.split.key` (or the row number) unless
    `data.validation` / `data.test` name files, which are streamed whole as those splits."""

    def __init__(self, data_cfg: Any, inputs: Sequence[Feature], outputs: Sequence[Feature],
                 shard: tuple[int, int] = (0, 1)) -> None:
        self.cfg = data_cfg
        self.inputs, self.outputs = list(inputs), list(outputs)
        self.features = [*self.inputs, *self.outputs]
        self.counts: dict[str, int] = {}
        self.shard = shard  # (rank, workers): the share of every file this process reads
        self.rows_read: dict[str, int] = {}  # file rows read, per pass ("fit", "train", "validation", "test")
        self.rows_by_worker: list[int] | None = None  # cleaned training rows in each worker's share (once counted)
        split = data_cfg.split
        self.fractions = {"validation": 0.0 if data_cfg.validation else split.validation,
                          "test": 0.0 if data_cfg.test else split.test}
        self.splits = [s for s in SPLITS if s == "train" or getattr(data_cfg, s) or self.fractions[s] > 0]

    def _source(self, split: str) -> str:
        return getattr(self.cfg, split) if split != "train" and getattr(self.cfg, split) else self.cfg.train

    def chunks(self, split: str, on_chunk: Callable[[pd.DataFrame], None] | None = None, whole: bool = False,
               owners: list[int] | None = None) -> Iterator[pd.DataFrame]:
        """Cleaned chunks of one split, in file order: this process's share of the file (`shard`), or
        all of it with `whole` (counted as the "fit" pass). `owners` (a list of `shard` workers' zeros)
        then counts the cleaned rows of the split each worker's share holds."""
        path = self._source(split)
        columns = source_columns(self.features)
        key = self.cfg.split.key
        hashed = path == self.cfg.train and any(self.fractions.values())
        if hashed and key and key not in columns:
            columns.append(key)
        code = SPLITS.index(split)
        pass_name = "fit" if whole else split
        workers = self.shard[1]
        total = parquet_rows(path) if owners is not None else None
        for first, number, chunk in read_numbered(path, columns, self.cfg.chunk_rows, (0, 1) if whole else self.shard):
            self.rows_read[pass_name] = self.rows_read.get(pass_name, 0) + len(chunk)
            rows = np.arange(first, first + len(chunk), dtype=np.uint64)
            keep = split_of(chunk[key] if key else rows, self.cfg.split.seed, self.fractions["validation"],
                            self.fractions["test"]) == code if hashed else np.ones(len(chunk), dtype=bool)
            chunk = chunk.loc[keep, source_columns(self.features)].reset_index(drop=True)
            if owners is not None:
                chunk["__owner"] = owners_of(rows[keep], number, total, workers)
            chunk = clean_chunk(chunk, self.features, self.outputs, self.counts)
            if owners is not None:
                for owner, count in enumerate(np.bincount(chunk.pop("__owner").to_numpy(), minlength=workers)):
                    owners[owner] += int(count)
            if len(chunk):
                if on_chunk is not None:
                    on_chunk(chunk)
                yield chunk
