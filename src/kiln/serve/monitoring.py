"""`kiln monitor`: drift of a registry model's sampled traffic (the registry lives in serve, the
statistics in kiln.monitor)."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from kiln.errors import KilnError
from kiln.monitor.drift import drift_report, load_stats
from kiln.monitor.report import write_html
from kiln.monitor.sampling import SampleStore
from kiln.serve.versions import ModelStore


def monitor(name: str, registry: str | Path, version: int | None = None, sample_db: str | Path | None = None,
            since_hours: float | None = None, output: str | Path | None = None, psi_threshold: float = 0.2,
            ks_alpha: float = 0.01) -> tuple[dict[str, Any], Path]:
    """`kiln monitor`: drift of a registry model's sampled traffic; writes an HTML report."""
    reg = ModelStore(registry, create=False)
    entry = reg.get(name, version)
    stats = load_stats(entry.path)
    store = SampleStore(sample_db or reg.root / "monitoring.sqlite", create=False)
    try:
        since = time.time() - since_hours * 3600 if since_hours else None
        inputs, outputs = store.load(name, str(entry.version), since=since)
    finally:
        store.close()
    if inputs.empty:
        raise KilnError(f"no sampled requests for model '{name}' version {entry.version} in {store.path}"
                        " (serve with --sample-rate > 0 and send some traffic)")
    report = drift_report(stats, inputs, outputs, psi_threshold, ks_alpha)
    report.update(model=name, version=entry.version)
    html = write_html(report, Path(output) if output else Path(f"monitor-{name}.html"))
    return report, html
