"""The files every run directory gets: model/, metrics.json, data_report.json, history.csv, the
loss curves, any extra plots and report.html (all written atomically)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from pathlib import Path
from typing import Any

import pandas as pd

from kiln.evaluate.plots import plot_loss_curves
from kiln.evaluate.report import write_report
from kiln.io import write_json, write_text

_DEFERRED: ContextVar[list[Callable[[], None]] | None] = ContextVar("kiln_deferred_run_files", default=None)


@contextmanager
def deferred_plots() -> Iterator[list[Callable[[], None]]]:
    """Runs inside write model/, metrics.json, data_report.json and history.csv as usual, but their plots
    and report.html only when the callable appended to the yielded list is called (kiln tune writes
    them for its best trial only, when the search ends)."""
    pending: list[Callable[[], None]] = []
    token = _DEFERRED.set(pending)
    try:
        yield pending
    finally:
        _DEFERRED.reset(token)


def write_run_files(
    run_dir: Path,
    model: Any,
    report: dict[str, Any],
    x: str = "epoch",
    title: str = "kiln run report",
    extra_plots: Callable[[Path, pd.DataFrame], list[Path]] | None = None,
) -> None:
    """`model` has `save(dir)`, `metrics`, `history` and `config` (a pydantic model)."""
    model.save(run_dir / "model")
    write_json(run_dir / "metrics.json", model.metrics)
    write_json(run_dir / "data_report.json", report)
    history = pd.DataFrame(model.history)
    write_text(run_dir / "history.csv", history.to_csv(index=False))
    pending = _DEFERRED.get()
    if pending is not None:
        pending.append(lambda: _plots_and_report(run_dir, model, report, history, x, title, extra_plots))
    else:
        _plots_and_report(run_dir, model, report, history, x, title, extra_plots)


def _plots_and_report(run_dir: Path, model: Any, report: dict[str, Any], history: pd.DataFrame, x: str, title: str,
                      extra_plots: Callable[[Path, pd.DataFrame], list[Path]] | None) -> None:
    images = [plot_loss_curves(history, run_dir / "loss_curves.svg", x=x)] if len(history) else []
    if extra_plots is not None:
        images += extra_plots(run_dir, history)
    write_report(run_dir, model.metrics, history, model.config.model_dump(mode="json"), images, report, title=title)
