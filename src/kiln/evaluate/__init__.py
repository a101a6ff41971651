"""Evaluation: split-level metrics, plots and the HTML run report.

Names are loaded lazily: ``import kiln.evaluate`` loads none of the modules.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from kiln.evaluate.metrics import (
        METRICS,
        classification_metrics,
        format_metrics_table,
        register_metric,
        regression_metrics,
    )
    from kiln.evaluate.plots import plot_confusion_matrix, plot_loss_curves
    from kiln.evaluate.report import write_report

_EXPORTS = {
    "METRICS": "metrics",
    "register_metric": "metrics",
    "classification_metrics": "metrics",
    "regression_metrics": "metrics",
    "format_metrics_table": "metrics",
    "plot_loss_curves": "plots",
    "plot_confusion_matrix": "plots",
    "write_report": "report",
}

__all__ = list(_EXPORTS)


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f"{__name__}.{module}"), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
