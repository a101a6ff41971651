"""Training-curve and confusion-matrix plots, saved atomically as PNG files."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402
from matplotlib.ticker import ScalarFormatter  # noqa: E402

from kiln.io import atomic_path  # noqa: E402

_SPLITS = ("train", "validation")
_SECOND_PANEL = ("accuracy", "r2")  # first one with columns in the history wins
_DPI = 100
_SHORT_LABELS = 4  # class names up to this long fit the confusion matrix's fixed margins


def _save(fig: Figure, path: Path) -> Path:
    """Write ``fig`` to ``path`` as PNG (atomically) and close it. zlib level 1: a few per cent larger
    files, a fifth less time to encode a line plot."""
    try:
        with atomic_path(path) as tmp:
            fig.savefig(tmp, format="png", dpi=_DPI, pil_kwargs={"compress_level": 1})
    finally:
        plt.close(fig)
    return Path(path)


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


def _margins(fig: Figure, left: float, right: float, bottom: float, top: float, between: float = 0.0) -> None:
    """Fixed margins in inches: laying out by measuring every label (tight_layout) costs a draw."""
    width, height = fig.get_size_inches()
    panels = len(fig.axes)
    panel = (width - left - right - between * (panels - 1)) / panels
    fig.subplots_adjust(left=left / width, right=1 - right / width, bottom=bottom / height, top=1 - top / height,
                        wspace=between / panel if panels > 1 else 0.2)


def _draw_curves(ax: plt.Axes, history: pd.DataFrame, columns: list[str], ylabel: str, x: str = "epoch") -> None:
    for col in columns:
        rows = history[[x, col]].dropna()
        ax.plot(rows[x], rows[col], marker="o", markersize=3, label=col)
    short = ScalarFormatter()
    short.set_powerlimits((-3, 4))  # 25000 → 2.5 and "1e4" above the axis: tick labels fit the fixed margin
    ax.yaxis.set_major_formatter(short)
    ax.set_xlabel(x)
    ax.set_ylabel(ylabel)
    ax.grid(True, alpha=0.3)
    ax.legend()


def plot_loss_curves(history: pd.DataFrame, path: Path, x: str = "epoch") -> Path:
    """Plot loss per epoch (or per another history column `x`, e.g. "iteration"), plus an accuracy
    (or r2) panel when such columns exist."""
    missing = {x, "train_loss"} - set(history.columns)
    if missing:
        raise ValueError(f"history is missing column(s): {sorted(missing)}")
    second = _second_panel(history)
    n_panels = 2 if second else 1
    fig, axes = plt.subplots(1, n_panels, figsize=(5.5 * n_panels, 4), squeeze=False)
    _draw_curves(axes[0, 0], history, _columns_for(history, "loss"), "loss", x)
    axes[0, 0].set_title("Loss")
    if second:
        metric, cols = second
        _draw_curves(axes[0, 1], history, cols, metric, x)
        axes[0, 1].set_title(metric.capitalize() if metric != "r2" else "R²")
    _margins(fig, left=0.85, right=0.15, bottom=0.55, top=0.35, between=0.95)
    return _save(fig, path)


def _annotate(ax: plt.Axes, cm: np.ndarray) -> None:
    threshold = cm.max() / 2 if cm.size and cm.max() > 0 else 0.5
    for (i, j), value in np.ndenumerate(cm):
        color = "white" if value > threshold else "black"
        ax.text(j, i, str(int(value)), ha="center", va="center", color=color, fontsize=9)


def plot_confusion_matrix(
    cm: list[list[int]] | np.ndarray, classes: list[str], path: Path, title: str = "Confusion matrix"
) -> Path:
    """Heatmap of a confusion matrix (rows = true class, columns = predicted) with counts."""
    matrix = np.asarray(cm)
    n = len(classes)
    if matrix.shape != (n, n):
        raise ValueError(f"confusion matrix shape {matrix.shape} does not match {n} classes")
    size = min(max(4.0, 0.6 * n + 2.5), 20.0)
    fig, ax = plt.subplots(figsize=(size + 1, size))
    image = ax.imshow(matrix, cmap="Blues", vmin=0)
    fig.colorbar(image, ax=ax, fraction=0.046, pad=0.04)
    ticks = np.arange(n)
    ax.set_xticks(ticks, labels=classes, rotation=45 if n > 4 else 0, ha="right" if n > 4 else "center")
    ax.set_yticks(ticks, labels=classes)
    ax.set_xlabel("Predicted")
    ax.set_ylabel("True")
    ax.set_title(title)
    if n <= 30:
        _annotate(ax, matrix)
    if max(map(len, classes), default=0) <= _SHORT_LABELS:
        _margins(fig, left=0.8, right=0.9, bottom=0.7, top=0.45)
    else:
        fig.tight_layout()  # long class names: measure them
    return _save(fig, path)
