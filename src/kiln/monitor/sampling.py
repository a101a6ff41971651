"""An append-only SQLite store of sampled requests and predictions, with personal data masked."""

from __future__ import annotations

import json
import math
import random
import sqlite3
import threading
import time
from pathlib import Path
from typing import Any

import pandas as pd

from kiln.errors import KilnError
from kiln.monitor.masking import mask_value

_SCHEMA = """
CREATE TABLE IF NOT EXISTS samples (
    id INTEGER PRIMARY KEY AUTOINCREMENT, model TEXT NOT NULL, version TEXT NOT NULL, ts REAL NOT NULL,
    inputs TEXT NOT NULL, outputs TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS samples_model ON samples (model, version, ts);
CREATE TRIGGER IF NOT EXISTS samples_no_update BEFORE UPDATE ON samples
    BEGIN SELECT RAISE(ABORT, 'samples are append-only'); END;
CREATE TRIGGER IF NOT EXISTS samples_no_delete BEFORE DELETE ON samples
    BEGIN SELECT RAISE(ABORT, 'samples are append-only'); END;
"""


def _clean(value: Any) -> Any:
    if hasattr(value, "item") and not isinstance(value, (str, bytes)):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return mask_value(value)


class SampleStore:
    """`record` keeps each row with probability `rate` (inputs and outputs as masked JSON)."""

    def __init__(self, path: str | Path, rate: float = 1.0, seed: int | None = None, create: bool = True) -> None:
        self.path = Path(path)
        if not create and not self.path.is_file():
            raise KilnError(f"no sample store at {self.path} (serve with --sample-rate > 0 to collect samples)")
        self.rate = float(rate)
        self._rng = random.Random(seed)
        self._lock = threading.Lock()
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._db = sqlite3.connect(self.path, timeout=30.0, check_same_thread=False, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.executescript(_SCHEMA)

    def record(self, model: str, version: str, inputs: pd.DataFrame, outputs: pd.DataFrame) -> int:
        """Store a random `rate` share of the rows; returns how many were stored."""
        with self._lock:
            keep = [i for i in range(len(inputs)) if self.rate >= 1.0 or self._rng.random() < self.rate]
        if not keep:
            return 0
        now = time.time()
        in_cols, out_cols = list(inputs.columns), list(outputs.columns)
        rows = []
        for i in keep:
            src = {c: _clean(inputs[c].iat[i]) for c in in_cols}
            dst = {c: _clean(outputs[c].iat[i]) for c in out_cols}
            rows.append((model, str(version), now, json.dumps(src), json.dumps(dst)))
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                self._db.executemany("INSERT INTO samples (model, version, ts, inputs, outputs) VALUES (?, ?, ?, ?, ?)", rows)
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            self._db.execute("COMMIT")
        return len(rows)

    def load(self, model: str, version: str | None = None, since: float | None = None,
             limit: int = 20_000) -> tuple[pd.DataFrame, pd.DataFrame]:
        """The newest `limit` samples of a model (optionally one version, optionally since a UNIX time)."""
        query, args = "SELECT inputs, outputs FROM samples WHERE model = ?", [model]
        if version is not None:
            query, args = query + " AND version = ?", [*args, str(version)]
        if since is not None:
            query, args = query + " AND ts >= ?", [*args, since]
        with self._lock:
            rows = self._db.execute(query + " ORDER BY id DESC LIMIT ?", [*args, int(limit)]).fetchall()
        rows.reverse()
        return (pd.DataFrame([json.loads(r[0]) for r in rows]), pd.DataFrame([json.loads(r[1]) for r in rows]))

    def count(self, model: str | None = None) -> int:
        with self._lock:
            if model is None:
                return int(self._db.execute("SELECT COUNT(*) FROM samples").fetchone()[0])
            return int(self._db.execute("SELECT COUNT(*) FROM samples WHERE model = ?", (model,)).fetchone()[0])

    def close(self) -> None:
        with self._lock:
            self._db.close()
