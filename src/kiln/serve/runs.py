"""Training runs for the dashboard: the run directories in a runs folder (`kiln serve --runs DIR`).

A run directory is one that `kiln train` wrote: `metrics.json`, `history.csv`, `data_report.json`,
`config.yaml`, `model/`. Only direct children of the folder with a `metrics.json` or `history.csv`
count; names are checked before any path is built, so a request cannot leave the folder.
"""

from __future__ import annotations

import csv
import json
import math
import re
from pathlib import Path
from typing import Any

RUN_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._=+-]{0,199}$")
_NESTED = ("per_class", "confusion_matrix")


def is_run(path: Path) -> bool:
    return path.is_dir() and ((path / "metrics.json").is_file() or (path / "history.csv").is_file())


def run_path(root: Path, name: str) -> Path | None:
    """The run directory `name` in `root`, or None (bad name, not a run)."""
    if not RUN_NAME.match(name):
        return None
    path = root / name
    return path if is_run(path) else None


def _read_json(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    return float(value) if math.isfinite(value) else None


def flat_metrics(metrics: dict[str, Any], prefix: str = "") -> dict[str, float | None]:
    """Scalar metrics of one split; a multi-output run's per-output dicts become `output.metric`."""
    out: dict[str, float | None] = {}
    for key, value in metrics.items():
        if key in _NESTED:
            continue
        if isinstance(value, dict):
            out.update(flat_metrics(value, f"{prefix}{key}."))
        elif value is None or isinstance(value, (int, float)) and not isinstance(value, bool):
            out[f"{prefix}{key}"] = _number(value)
    return out


def _confusions(metrics: dict[str, Any]) -> list[dict[str, Any]]:
    """Confusion matrices of the test split (validation when there is no test split), with class names."""
    for split in ("test", "validation"):
        values = metrics.get(split)
        if not isinstance(values, dict) or not values:
            continue
        found = []
        entries = [(None, values)] if "confusion_matrix" in values else list(values.items())
        for output, entry in entries:
            if isinstance(entry, dict) and isinstance(entry.get("confusion_matrix"), list):
                matrix = entry["confusion_matrix"]
                classes = list(entry["per_class"]) if isinstance(entry.get("per_class"), dict) else [str(i) for i in range(len(matrix))]
                found.append({"split": split, "output": output, "classes": classes, "matrix": matrix})
        return found
    return []


def read_history(path: Path) -> dict[str, list[float | None]]:
    """history.csv as columns of numbers (blank or non-numeric cells are null)."""
    columns: dict[str, list[float | None]] = {}
    try:
        with path.open(newline="", encoding="utf-8") as fh:
            reader = csv.DictReader(fh)
            for name in reader.fieldnames or []:
                columns[name] = []
            for row in reader:
                for name in columns:
                    try:
                        value = float(row.get(name) or "nan")
                    except ValueError:
                        value = math.nan
                    columns[name].append(value if math.isfinite(value) else None)
    except OSError:
        return {}
    return columns


def _model_type(run: Path) -> str | None:
    try:
        import yaml

        config = yaml.safe_load((run / "config.yaml").read_text(encoding="utf-8"))
        return str(config["model"]["type"])
    except Exception:  # noqa: BLE001 - a run without (a readable) config still lists
        return None


def summary(run: Path, history: dict[str, list[float | None]] | None = None) -> dict[str, Any]:
    metrics = _read_json(run / "metrics.json")
    report = _read_json(run / "data_report.json")
    history = read_history(run / "history.csv") if history is None else history
    stamps = [p.stat().st_mtime for p in (run / "metrics.json", run / "history.csv") if p.is_file()]
    return {
        "name": run.name,
        "model": _model_type(run),
        "modified": max(stamps) if stamps else None,
        "epochs": len(next(iter(history.values()))) if history else 0,
        "best_epoch": report.get("best_epoch"),
        "stop_reason": report.get("stop_reason"),
        "servable": (run / "model" / "model.json").is_file(),
        "metrics": {split: flat_metrics(values) for split, values in metrics.items() if isinstance(values, dict)},
    }


def list_runs(root: Path) -> list[dict[str, Any]]:
    """Every run in `root`, newest first."""
    if not root.is_dir():
        return []
    runs = [summary(p) for p in root.iterdir() if RUN_NAME.match(p.name) and is_run(p)]
    return sorted(runs, key=lambda r: (r["modified"] or 0, r["name"]), reverse=True)


def run_detail(run: Path) -> dict[str, Any]:
    history = read_history(run / "history.csv")
    return {**summary(run, history), "history": history, "confusion": _confusions(_read_json(run / "metrics.json"))}
