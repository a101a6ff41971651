"""The files every run directory gets: model/, metrics.json, data_report.json, history.csv, the
loss curves, any extra plots and report.html (all written atomically)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pandas as pd

from kiln.io import write_json, write_text


def write_run_files(
    run_dir: Path,
    model: Any,
    report: dict[str, Any],
    x: str = "epoch",
    title: str = "kiln run report",
    extra_plots: Callable[[Path, pd.DataFrame], list[Path]] | None = None,
) -> None:
    """`model` has `save(dir)`, `metrics`, `history` and `config` (a pydantic model)."""
    from kiln.evaluate.plots import plot_loss_curves
    from kiln.evaluate.report import write_report

    model.save(run_dir / "model")
    write_json(run_dir / "metrics.json", model.metrics)
    write_json(run_dir / "data_report.json", report)
    history = pd.DataFrame(model.history)
    write_text(run_dir / "history.csv", history.to_csv(index=False))
    images = [plot_loss_curves(history, run_dir / "loss_curves.png", x=x)] if len(history) else []
    if extra_plots is not None:
        images += extra_plots(run_dir, history)
    write_report(run_dir, model.metrics, history, model.config.model_dump(mode="json"), images, report, title=title)
