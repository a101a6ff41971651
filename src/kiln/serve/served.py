"""One served model version: what it is, its input schema and example row, its drift status."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from kiln.io import read_json
from kiln.serve.batcher import MicroBatcher
from kiln.serve.generation import LM_OUTPUTS
from kiln.serve.schema import input_schema, output_schema
from kiln.serve.workers import ModelWorker


@dataclass
class ServedModel:
    name: str
    version: str
    path: Path | None
    model: Any
    batcher: MicroBatcher | None  # None for language models (generate, no batching)
    metrics: dict[str, Any] = field(default_factory=dict)
    inputs: list[dict[str, str]] = field(default_factory=list)  # the input schema, computed once
    example: dict[str, Any] = field(default_factory=dict)  # a typical input row (from stats.json)
    drift: dict[str, Any] | None = None  # the latest drift summary (sampling on)
    task: str = "prediction"  # or "generation" (a language model: POST .../generate)
    worker: ModelWorker | None = None  # a language model's sampling threads (a predictor's are its batcher's)

    @property
    def threads(self) -> ModelWorker:
        return self.worker if self.worker is not None else self.batcher.worker  # type: ignore[union-attr]

    def describe(self, monitored: bool = False) -> dict[str, Any]:
        return {
            "name": self.name,
            "version": self.version,
            "inputs": self.inputs,
            "task": self.task,
            "outputs": LM_OUTPUTS if self.task == "generation" else output_schema(self.model.config),
            "metrics": self.metrics,
            "example": self.example,
            "drift": self.drift_status(monitored),
        }

    def drift_status(self, monitored: bool) -> dict[str, Any]:
        """`status`: not monitored | no training statistics | waiting for samples | too few samples | ok | drift."""
        if not monitored:
            return {"status": "not monitored"}
        if self.path is None or not (self.path / "stats.json").is_file():
            return {"status": "no training statistics"}
        if self.drift is None:
            return {"status": "waiting for samples"}
        return self.drift


def drift_summary(report: dict[str, Any]) -> dict[str, Any]:
    status = "drift" if report["drift"] else ("ok" if report.get("enough_data", True) else "too few samples")
    return {"status": status, "rows": report["rows"], "features": report.get("drifted_features", []),
            "predictions": report.get("drifted_predictions", []), "checked_at": time.time()}


def example_row(path: Path | None, model: Any) -> dict[str, Any]:
    """A plausible input row for the dashboard's try-it form: training means and most frequent values."""

    stats: dict[str, Any] = {}
    if path is not None and (path / "stats.json").is_file():
        try:
            stats = read_json(path / "stats.json").get("features", {})
        except Exception:  # noqa: BLE001 - the example is a convenience
            stats = {}
    row: dict[str, Any] = {}
    by_column = {ref.get("column", name): ref for name, ref in reversed(stats.items()) if isinstance(ref, dict)}  # a column's first feature
    for feature in input_schema(model.config):
        ref = by_column.get(feature["name"], {})
        value: Any = None
        if feature["type"] == "numeric" and isinstance(ref.get("mean"), (int, float)):
            value = round(float(ref["mean"]), 3)
        elif ref.get("kind") == "categorical" and ref.get("frequencies"):
            value = next(iter(ref["frequencies"]))
        elif feature["type"] == "text":
            value = ""
        row[feature["name"]] = value
    return row
