"""`ServeSettings`: the server's limits and options (the `kiln serve` flags)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path


@dataclass
class ServeSettings:
    max_batch_size: int = 32  # rows per model.predict call; 1 turns batching off
    max_wait_ms: float = 5.0  # how long the batcher waits for more rows
    timeout_s: float = 10.0  # per request, from body read to answer (504 past it)
    max_body_bytes: int = 1 << 20  # 413 past it
    max_rows: int | None = 10_000  # rows per request (422 past it)
    api_keys: Path | None = None  # key file; None = no access control
    poll_s: float = 1.0  # model store poll interval
    sample_rate: float = 0.0  # fraction of predicted rows stored for monitoring
    sample_db: Path | None = None  # SQLite sample store (default: <registry>/monitoring.sqlite)
    drift_interval_s: float = 60.0  # how often drift gauges are recomputed (0 = never)
    runs_dir: Path | None = None  # training runs shown on the dashboard (GET /v1/runs)
    queue_size: int = 256  # predict requests waiting per model (429 past it)
    generate_workers: int = 2  # sampling threads per language model
    generate_queue_size: int = 8  # generate requests waiting per language model beyond the running ones (429 past it)
    generate_nice: int = 10  # added to the sampling threads' nice value (Linux): predictions get the CPU first
    busy_hold_s: float = 0.25  # a 429 is answered after this hold, so a client retrying at once cannot storm the server
    runtime: str = "torch"  # or "onnx": model folders are `kiln export` outputs run by onnxruntime
    stream_timeout_s: float = 300.0  # a streamed generation ends with an error event past it
