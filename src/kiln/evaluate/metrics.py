"""Split-level metrics over a whole split (never per batch): classification scores from the
confusion matrix and ROC AUC from average ranks (the values scikit-learn gives, without importing it:
`sklearn.metrics` and `scipy.stats` cost ~1.3 s, which a run would pay at its first validation), and
regression errors with scikit-learn, imported when one is computed.

Adding a metric is one small function plus the ``register_metric`` decorator::

    @register_metric("balanced_accuracy", "classification")
    def _balanced_accuracy(y_true, y_pred, proba):
        return sklearn.metrics.balanced_accuracy_score(y_true, y_pred)

Classification metrics receive ``(y_true, y_pred, proba)`` (int labels, argmax labels,
``(n, C)`` probabilities); regression metrics receive ``(y_true, y_pred)``.
A metric returns a float, or ``None`` when it is undefined for the split.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable, Mapping
from numbers import Number
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

if TYPE_CHECKING:
    from rich.table import Table

METRIC_KINDS = ("classification", "regression")
METRICS: dict[str, Callable[..., float | None]] = {}
"""Registry of metric name -> function; each function carries a ``kind`` attribute."""

_NESTED_KEYS = frozenset({"per_class", "confusion_matrix"})


def register_metric(name: str, kind: str) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Decorator registering ``fn`` in ``METRICS`` under ``name`` for tasks of ``kind``."""
    if kind not in METRIC_KINDS:
        raise ValueError(f"metric kind must be one of {METRIC_KINDS}, got {kind!r}")

    def decorator(fn: Callable[..., Any]) -> Callable[..., Any]:
        if name in METRICS:
            raise ValueError(f"metric {name!r} is already registered")
        fn.kind = kind  # type: ignore[attr-defined]
        METRICS[name] = fn
        return fn

    return decorator


def metrics_of_kind(kind: str) -> dict[str, Callable[..., float | None]]:
    """Registered metrics of one kind, in registration order."""
    return {name: fn for name, fn in METRICS.items() if getattr(fn, "kind", None) == kind}


def _to_float(value: Any) -> float | None:
    """Plain python float, or ``None`` for missing / non-finite values."""
    if value is None:
        return None
    value = float(value)
    return value if math.isfinite(value) else None


def _is_binary(proba: np.ndarray) -> bool:
    return proba.shape[1] == 2


def _confusion(y_true: np.ndarray, y_pred: np.ndarray, n_classes: int) -> np.ndarray:
    """counts[i, j]: rows of class i predicted as j."""
    return np.bincount(y_true * n_classes + y_pred, minlength=n_classes * n_classes).reshape(n_classes, n_classes)


def _ratio(num: np.ndarray, den: np.ndarray) -> np.ndarray:
    """num / den, 0 where den is 0 (scikit-learn's zero_division=0)."""
    return np.divide(num, den, out=np.zeros(num.shape, dtype=np.float64), where=den > 0)


def _scores(y_true: np.ndarray, y_pred: np.ndarray, n_classes: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Per-class precision, recall, F1 and support from the confusion matrix (the same values as
    scikit-learn's precision_recall_fscore_support with zero_division=0, without its per-call
    input validation, which cost more than the network in small per-epoch validations)."""
    counts = _confusion(y_true, y_pred, n_classes)
    tp = np.diag(counts).astype(np.float64)
    predicted, support = counts.sum(axis=0), counts.sum(axis=1)
    return _ratio(tp, predicted), _ratio(tp, support), _ratio(2 * tp, predicted + support), support


def _averaged(scores: np.ndarray) -> float:
    """Binary: the positive class (index 1). Multi-class: the macro average over every class."""
    return float(scores[1]) if scores.shape[0] == 2 else float(scores.mean())


# --- classification -------------------------------------------------------------------


@register_metric("accuracy", "classification")
def _accuracy(y_true: np.ndarray, y_pred: np.ndarray, proba: np.ndarray) -> float:
    return float(np.mean(y_true == y_pred))


@register_metric("precision", "classification")
def _precision(y_true: np.ndarray, y_pred: np.ndarray, proba: np.ndarray) -> float:
    return _averaged(_scores(y_true, y_pred, proba.shape[1])[0])


@register_metric("recall", "classification")
def _recall(y_true: np.ndarray, y_pred: np.ndarray, proba: np.ndarray) -> float:
    return _averaged(_scores(y_true, y_pred, proba.shape[1])[1])


@register_metric("f1", "classification")
def _f1(y_true: np.ndarray, y_pred: np.ndarray, proba: np.ndarray) -> float:
    return _averaged(_scores(y_true, y_pred, proba.shape[1])[2])


@register_metric("roc_auc", "classification")
def _roc_auc(y_true: np.ndarray, y_pred: np.ndarray, proba: np.ndarray) -> float | None:
    """Binary: AUC of ``proba[:, 1]``. Multi-class: one-vs-rest macro AUC.

    Classes absent from ``y_true`` are left out of the macro average (their one-vs-rest
    AUC is undefined); with a single class present the result is ``None``.
    """
    present = np.unique(y_true)
    if present.size < 2:
        return None
    if _is_binary(proba):
        return _binary_auc(y_true == 1, proba[:, 1])
    return float(np.mean([_binary_auc(y_true == k, proba[:, k]) for k in present]))


def _binary_auc(positive: np.ndarray, score: np.ndarray) -> float:
    """ROC AUC as the Mann-Whitney statistic: the chance that a positive row outscores a negative
    one, ties counting half (average ranks); equal to scikit-learn's roc_auc_score."""
    ranks = pd.Series(score).rank(method="average").to_numpy()
    n_pos = int(positive.sum())
    n_neg = positive.size - n_pos
    return float((ranks[positive].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))


def _per_class(y_true: np.ndarray, y_pred: np.ndarray, classes: list[str]) -> dict[str, dict]:
    p, r, f, s = _scores(y_true, y_pred, len(classes))
    return {
        name: {"precision": float(p[i]), "recall": float(r[i]), "f1": float(f[i]), "support": int(s[i])}
        for i, name in enumerate(classes)
    }


def _check_classification(y_true: Any, proba: Any, classes: list[str]) -> tuple[np.ndarray, np.ndarray]:
    y = np.asarray(y_true).reshape(-1)
    p = np.asarray(proba, dtype=np.float64)
    n_classes = len(classes)
    if n_classes < 2 or len(set(classes)) != n_classes:
        raise ValueError(f"classes must hold at least 2 distinct names, got {classes!r}")
    if p.ndim != 2 or p.shape != (y.shape[0], n_classes):
        raise ValueError(f"proba must have shape ({y.shape[0]}, {n_classes}), got {p.shape}")
    if y.size == 0:
        raise ValueError("cannot compute metrics on an empty split")
    if y.dtype.kind not in "biuf" or not np.all(np.mod(y, 1) == 0) or y.min() < 0 or y.max() >= n_classes:
        raise ValueError(f"y_true must hold integer class indices in [0, {n_classes})")
    return y.astype(np.int64), p


def classification_metrics(
    y_true: np.ndarray, proba: np.ndarray, classes: list[str], loss: float | None = None
) -> dict:
    """Metrics of one classification split; every value is json-serialisable.

    Binary (2 classes): precision/recall/f1 of the positive class (index 1). Multi-class:
    macro averages. ``roc_auc`` is ``None`` when ``y_true`` holds a single class.
    """
    y, p = _check_classification(y_true, proba, classes)
    y_pred = p.argmax(axis=1)
    out: dict[str, Any] = {
        name: _to_float(fn(y, y_pred, p)) for name, fn in metrics_of_kind("classification").items()
    }
    out["loss"] = _to_float(loss)
    out["per_class"] = _per_class(y, y_pred, classes)
    cm = _confusion(y, y_pred, len(classes))
    out["confusion_matrix"] = [[int(v) for v in row] for row in cm]
    return out


# --- regression ------------------------------------------------------------------------


def _skm() -> Any:
    from sklearn import metrics

    return metrics


@register_metric("mse", "regression")
def _mse(y_true: np.ndarray, y_pred: np.ndarray) -> float:
    return _skm().mean_squared_error(y_true, y_pred)


@register_metric("rmse", "regression")
def _rmse(y_true: np.ndarray, y_pred: np.ndarray) -> float:
    return _skm().root_mean_squared_error(y_true, y_pred)


@register_metric("mae", "regression")
def _mae(y_true: np.ndarray, y_pred: np.ndarray) -> float:
    return _skm().mean_absolute_error(y_true, y_pred)


@register_metric("r2", "regression")
def _r2(y_true: np.ndarray, y_pred: np.ndarray) -> float | None:
    """R²; ``None`` when undefined (fewer than two samples)."""
    if y_true.shape[0] < 2:
        return None
    from sklearn.exceptions import UndefinedMetricWarning

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UndefinedMetricWarning)
        return _skm().r2_score(y_true, y_pred)


def _as_targets(values: Any) -> np.ndarray:
    arr = np.asarray(values, dtype=np.float64)
    return arr.reshape(-1) if arr.ndim == 2 and arr.shape[1] == 1 else arr


def regression_metrics(y_true: np.ndarray, y_pred: np.ndarray, loss: float | None = None) -> dict:
    """Metrics of one regression split: mse, rmse, mae, r2 and the (optional) loss."""
    y, yp = _as_targets(y_true), _as_targets(y_pred)
    if y.shape != yp.shape:
        raise ValueError(f"y_true and y_pred shapes differ: {y.shape} vs {yp.shape}")
    if y.size == 0:
        raise ValueError("cannot compute metrics on an empty split")
    out: dict[str, Any] = {name: _to_float(fn(y, yp)) for name, fn in metrics_of_kind("regression").items()}
    out["loss"] = _to_float(loss)
    return out


# --- console table ---------------------------------------------------------------------


def _is_scalar(value: Any) -> bool:
    return value is None or (isinstance(value, Number) and not isinstance(value, bool))


def flatten_scalars(metrics: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    """Scalar metrics of one split; per-feature dicts become ``feature.metric`` keys.

    ``per_class``, ``confusion_matrix`` and any list values are skipped.
    """
    flat: dict[str, Any] = {}
    for key, value in metrics.items():
        if key in _NESTED_KEYS:
            continue
        if isinstance(value, Mapping):
            flat.update(flatten_scalars(value, f"{prefix}{key}."))
        elif _is_scalar(value):
            flat[f"{prefix}{key}"] = value
    return flat


def format_value(value: Any) -> str:
    """Four decimals for floats, plain ints, ``n/a`` for missing values."""
    if value is None:
        return "n/a"
    if isinstance(value, (int, np.integer)) and not isinstance(value, bool):
        return str(int(value))
    if isinstance(value, Number):
        return f"{float(value):.4f}"
    return str(value)


def _as_splits(metrics: Mapping[str, Any]) -> Mapping[str, Mapping[str, Any]]:
    """Accept ``{split: {...}}``; a single flat metrics dict becomes one ``value`` column."""
    if any(_is_scalar(v) for v in metrics.values()):
        return {"value": metrics}
    return {k: v for k, v in metrics.items() if isinstance(v, Mapping)}


def format_metrics_table(metrics: dict) -> Table:
    """Rich table: one row per scalar metric, one column per split present."""
    from rich.table import Table

    splits = {name: flatten_scalars(values) for name, values in _as_splits(metrics).items()}
    table = Table(title="Metrics")
    table.add_column("metric", style="bold")
    for split in splits:
        table.add_column(split, justify="right")
    rows = list(dict.fromkeys(key for flat in splits.values() for key in flat))
    for row in rows:
        table.add_row(row, *(format_value(flat[row]) if row in flat else "" for flat in splits.values()))
    return table
