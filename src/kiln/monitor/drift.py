"""Drift of served data vs training statistics: PSI (binned numeric and categorical), KS test, prediction shift."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from kiln.errors import KilnError
from kiln.io import read_json
from kiln.monitor.stats import STATS_FILE, as_labels, as_numbers, bin_counts

EPS = 1e-4
MIN_ROWS = 30


def psi(expected: np.ndarray, actual: np.ndarray) -> float:
    """Population stability index: sum((a - e) * ln(a / e)) over bins, shares floored at 1e-4."""
    e = np.clip(np.asarray(expected, dtype="float64"), EPS, None)
    a = np.clip(np.asarray(actual, dtype="float64"), EPS, None)
    return float(np.sum((a - e) * np.log(a / e)))


def _numeric_shares(ref: dict[str, Any], values: pd.Series) -> tuple[np.ndarray, np.ndarray]:
    n = max(len(values), 1)
    present = values.dropna().to_numpy()
    actual = np.append(bin_counts(present, ref["edges"]) / n, values.isna().sum() / n)
    expected = np.append(np.asarray(ref["proportions"], dtype="float64"), ref.get("missing", 0.0))
    return expected, actual


def _categorical_shares(ref: dict[str, Any], values: pd.Series) -> tuple[np.ndarray, np.ndarray]:
    labels = as_labels(values)
    n = max(len(labels), 1)
    known = list(ref["frequencies"])
    counts = labels.dropna().value_counts()
    actual = [counts.get(k, 0) / n for k in known]
    actual.append(counts[[k for k in counts.index if k not in ref["frequencies"]]].sum() / n)
    actual.append(labels.isna().sum() / n)
    expected = [ref["frequencies"][k] for k in known] + [ref.get("other", 0.0), ref.get("missing", 0.0)]
    return np.asarray(expected), np.asarray(actual, dtype="float64")


def compare(ref: dict[str, Any], values: pd.Series, psi_threshold: float, ks_alpha: float) -> dict[str, Any]:
    kind = ref["kind"]
    row: dict[str, Any] = {"kind": kind, "rows": int(len(values)), "psi": None, "ks_statistic": None, "ks_pvalue": None}
    if kind == "categorical":
        expected, actual = _categorical_shares(ref, values)
        row["psi"] = psi(expected, actual)
        shares = as_labels(values).value_counts(normalize=True)
        row["top_served"] = {str(k): float(v) for k, v in shares.iloc[:5].items()}
        row["top_training"] = dict(list(ref["frequencies"].items())[:5])
        row["new_share"] = float(actual[-2])
    else:
        numbers = as_numbers(values, kind)
        if ref["edges"] or ref["proportions"]:
            expected, actual = _numeric_shares(ref, numbers)
            row["psi"] = psi(expected, actual)
        present = numbers.dropna().to_numpy()
        if len(present) and ref.get("sample"):
            from scipy.stats import ks_2samp

            result = ks_2samp(np.asarray(ref["sample"]), present)
            row["ks_statistic"], row["ks_pvalue"] = float(result.statistic), float(result.pvalue)
        row["mean_training"], row["mean_served"] = ref.get("mean"), (float(present.mean()) if len(present) else None)
    row["drift"] = bool((row["psi"] is not None and row["psi"] > psi_threshold)
                        or (row["ks_pvalue"] is not None and row["ks_pvalue"] < ks_alpha))
    return row


def drift_report(stats: dict[str, Any], inputs: pd.DataFrame, outputs: pd.DataFrame, psi_threshold: float = 0.2,
                 ks_alpha: float = 0.01, min_rows: int = MIN_ROWS) -> dict[str, Any]:
    """Compare served inputs/outputs with the training statistics. Fewer than `min_rows` rows: figures are
    computed but nothing is flagged (`enough_data` is false)."""
    n = len(inputs)
    report: dict[str, Any] = {"rows": int(n), "training_rows": stats.get("rows"), "psi_threshold": psi_threshold,
                              "ks_alpha": ks_alpha, "min_rows": min_rows, "enough_data": n >= min_rows,
                              "features": {}, "predictions": {}}
    for name, ref in stats.get("features", {}).items():
        column = ref.get("column", name)  # the served column the feature reads (stats before `column:`: its name)
        if column in inputs.columns:
            report["features"][name] = compare(ref, inputs[column], psi_threshold, ks_alpha)
    for name, ref in stats.get("predictions", {}).items():
        col = f"{name}_prediction"
        if col in outputs.columns:
            report["predictions"][name] = compare(ref, outputs[col], psi_threshold, ks_alpha)
    if not report["enough_data"]:
        for row in (*report["features"].values(), *report["predictions"].values()):
            row["drift"] = False
    report["drifted_features"] = [k for k, v in report["features"].items() if v["drift"]]
    report["drifted_predictions"] = [k for k, v in report["predictions"].items() if v["drift"]]
    report["drift"] = bool(report["drifted_features"] or report["drifted_predictions"])
    return report


def load_stats(model_dir: str | Path) -> dict[str, Any]:
    path = Path(model_dir) / STATS_FILE
    if not path.is_file():
        raise KilnError(f"{model_dir} has no {STATS_FILE} (models trained before kiln recorded training statistics "
                        "cannot be monitored; retrain it)")
    return read_json(path)


def drift_for_served(model_dir: Path, sampler: Any, name: str, version: str) -> dict[str, Any] | None:
    """Drift figures for a served model from its samples (None if it has no stats or no samples yet)."""
    if not (Path(model_dir) / STATS_FILE).is_file():
        return None
    inputs, outputs = sampler.load(name, version)
    if inputs.empty:
        return None
    return drift_report(load_stats(model_dir), inputs, outputs)
