"""Training statistics written next to a model (`model/stats.json`): the reference for drift checks.

Per input feature, from the training split: numeric → quantile bin edges, bin shares, missing share and a
sample of values (for the KS test); category/binary → value shares (top 50, the rest as `__other__`);
text → the same as numeric, over text length in characters. Per output: the distribution of the
model's own predictions on (up to 2,000 rows of) the training split.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from kiln.io import write_json

STATS_FILE = "stats.json"
FORMAT_VERSION = 1
BINS = 10
TOP_CATEGORIES = 50
SAMPLE_SIZE = 1000
PREDICTION_ROWS = 2000  # training rows (a sample of them beyond this) whose predictions are summarised
OTHER = "__other__"
log = logging.getLogger("kiln")


def feature_kind(ftype: str) -> str | None:
    """How a feature type is compared: 'numeric', 'categorical', 'length' (text), or None (images)."""
    return {"numeric": "numeric", "category": "categorical", "binary": "categorical", "text": "length"}.get(ftype)


def as_numbers(series: pd.Series, kind: str) -> pd.Series:
    if kind == "length":
        return series.map(lambda v: float(len(v)) if isinstance(v, str) else np.nan).astype("float64")
    return pd.to_numeric(series, errors="coerce").astype("float64")


def as_labels(series: pd.Series) -> pd.Series:
    def label(v: Any) -> Any:
        if v is None or (isinstance(v, float) and np.isnan(v)):
            return None
        if isinstance(v, float) and v.is_integer():
            v = int(v)
        return str(v)

    return series.map(label)


def numeric_stats(values: pd.Series, rng: np.random.Generator) -> dict[str, Any]:
    present = values.dropna().to_numpy()
    if len(present) == 0:
        return {"kind": "numeric", "edges": [], "proportions": [], "missing": 1.0, "sample": []}
    edges = np.unique(np.quantile(present, np.linspace(0, 1, BINS + 1)[1:-1])).tolist()
    counts = bin_counts(present, edges)
    sample = present if len(present) <= SAMPLE_SIZE else rng.choice(present, SAMPLE_SIZE, replace=False)
    return {
        "kind": "numeric",
        "edges": edges,
        "proportions": (counts / len(values)).tolist(),
        "missing": float(values.isna().mean()),
        "mean": float(present.mean()),
        "std": float(present.std()),
        "sample": [float(v) for v in sample],
    }


def bin_counts(values: np.ndarray, edges: list[float]) -> np.ndarray:
    """Counts per bin: (-inf, e0], (e0, e1], ..., (e_last, inf)."""
    idx = np.searchsorted(np.asarray(edges, dtype="float64"), values, side="left")
    return np.bincount(idx, minlength=len(edges) + 1).astype("float64")


def categorical_stats(values: pd.Series) -> dict[str, Any]:
    labels = as_labels(values)
    shares = labels.dropna().value_counts() / max(len(labels), 1)
    top = shares.iloc[:TOP_CATEGORIES]
    return {
        "kind": "categorical",
        "frequencies": {str(k): float(v) for k, v in top.items()},
        "other": float(shares.iloc[TOP_CATEGORIES:].sum()),
        "missing": float(labels.isna().mean()),
    }


def column_stats(series: pd.Series, kind: str, rng: np.random.Generator) -> dict[str, Any]:
    if kind == "categorical":
        return categorical_stats(series)
    out = numeric_stats(as_numbers(series, kind), rng)
    out["kind"] = kind
    return out


def training_stats(model: Any, frame: pd.DataFrame, seed: int = 0, predict: Any = None) -> dict[str, Any]:
    """Input and prediction statistics of the training split; `predict(rows)` defaults to model.predict."""
    rng = np.random.default_rng(seed)
    features: dict[str, Any] = {}
    for f in model.config.input_features:
        kind, column = feature_kind(f.type), f.source_column
        if kind is not None and column in frame.columns:  # keyed by feature, computed from the column it reads
            features[f.name] = {"type": f.type, "column": column, **column_stats(frame[column], kind, rng)}
    sample = frame if len(frame) <= PREDICTION_ROWS else frame.sample(PREDICTION_ROWS, random_state=seed)
    preds = (predict or model.predict)(sample)
    predictions: dict[str, Any] = {}
    for f in model.config.output_features:
        col = f"{f.name}_prediction"
        if col in preds.columns:
            kind = "categorical" if f.type in ("binary", "category") else "numeric"
            predictions[f.name] = {"type": f.type, **column_stats(preds[col], kind, rng)}
    return {"format_version": FORMAT_VERSION, "split": "train", "rows": int(len(frame)),
            "features": features, "predictions": predictions}


def write_training_stats(model_dir: str | Path, model: Any, frame: pd.DataFrame, predict: Any = None) -> Path | None:
    """Write `stats.json` into a model directory; a failure is a warning, never a failed training run."""

    try:
        return write_json(Path(model_dir) / STATS_FILE, training_stats(model, frame, predict=predict))
    except Exception as exc:  # noqa: BLE001
        log.warning("training statistics for monitoring were not written: %s", exc)
        return None
