"""A run's standard charts (training curves, confusion matrix), saved atomically as SVG files.

kiln draws them itself (kiln.evaluate.svg): importing matplotlib and drawing them as PNG cost more
than training a small table network (docs/benchmarks.md)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from kiln.evaluate.svg import Panel, Series, heatmap, line_chart
from kiln.io import write_text

_SPLITS = ("train", "validation")
_SECOND_PANEL = ("accuracy", "r2")  # first one with columns in the history wins
_MAX_ANNOTATED = 30  # classes up to which every cell shows its count (more: tooltips only)


def _columns_for(history: pd.DataFrame, metric: str) -> list[str]:
    """History columns holding ``metric`` for the train/validation splits, in that order."""
    cols = []
    for split in _SPLITS:
        cols += [c for c in history.columns if str(c).startswith(f"{split}_") and str(c).endswith(f"_{metric}")]
    return cols


def _second_panel(history: pd.DataFrame) -> tuple[str, list[str]] | None:
    for metric in _SECOND_PANEL:
        cols = _columns_for(history, metric)
        if cols:
            return metric, cols
    return None


def _panel(history: pd.DataFrame, columns: list[str], title: str, ylabel: str, x: str) -> Panel:
    xs = pd.to_numeric(history[x], errors="coerce").to_numpy(float)
    return Panel(title, x, ylabel, [Series(str(c), xs, pd.to_numeric(history[c], errors="coerce").to_numpy(float))
                                    for c in columns])


def plot_loss_curves(history: pd.DataFrame, path: Path, x: str = "epoch") -> Path:
    """Loss per epoch (or per another history column `x`, e.g. "iteration"), plus an accuracy (or r2)
    panel when such columns exist, as SVG."""
    missing = {x, "train_loss"} - set(history.columns)
    if missing:
        raise ValueError(f"history is missing column(s): {sorted(missing)}")
    panels = [_panel(history, _columns_for(history, "loss"), "Loss", "loss", x)]
    second = _second_panel(history)
    if second:
        metric, cols = second
        panels.append(_panel(history, cols, metric.capitalize() if metric != "r2" else "R²", metric, x))
    return write_text(path, line_chart(panels))


def plot_confusion_matrix(
    cm: list[list[int]] | np.ndarray, classes: list[str], path: Path, title: str = "Confusion matrix"
) -> Path:
    """Heatmap of a confusion matrix (rows = true class, columns = predicted) with counts, as SVG."""
    matrix = np.asarray(cm)
    n = len(classes)
    if matrix.shape != (n, n):
        raise ValueError(f"confusion matrix shape {matrix.shape} does not match {n} classes")
    return write_text(path, heatmap(matrix.tolist(), [str(c) for c in classes], title, show_values=n <= _MAX_ANNOTATED))
