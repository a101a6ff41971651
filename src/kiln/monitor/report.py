"""Drift report as a rich table (terminal) and a self-contained HTML page (no external assets)."""

from __future__ import annotations

import html
from pathlib import Path
from typing import Any

from kiln.io import write_text


def _fmt(value: Any, digits: int = 4) -> str:
    if value is None:
        return "–"
    if isinstance(value, float):
        return f"{value:.{digits}g}"
    return str(value)


def _rows(report: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    return ([("input", k, v) for k, v in report["features"].items()]
            + [("prediction", k, v) for k, v in report["predictions"].items()])


def drift_table(report: dict[str, Any]):
    from rich.table import Table

    title = f"drift: {report.get('model', '?')} v{report.get('version', '?')} — {report['rows']} sampled rows vs {report.get('training_rows')} training rows"
    table = Table(title=title)
    for col in ("", "column", "kind", "PSI", "KS stat", "KS p-value", "drift"):
        table.add_column(col, justify="right" if col in ("PSI", "KS stat", "KS p-value") else "left")
    for side, name, row in _rows(report):
        flag = "[bold red]DRIFT[/]" if row["drift"] else "[green]ok[/]"
        table.add_row(side, name, row["kind"], _fmt(row["psi"]), _fmt(row["ks_statistic"]), _fmt(row["ks_pvalue"]), flag)
    if not report["enough_data"]:
        table.caption = f"fewer than {report['min_rows']} samples: nothing is flagged yet"
    else:
        table.caption = f"drift = PSI > {report['psi_threshold']} or KS p-value < {report['ks_alpha']}"
    return table


def write_html(report: dict[str, Any], path: Path) -> Path:
    esc = html.escape
    body = []
    for side, name, row in _rows(report):
        psi = row["psi"] or 0.0
        width = min(100.0, psi / max(report["psi_threshold"], 1e-9) * 50.0)
        body.append(
            f"<tr class='{'bad' if row['drift'] else 'ok'}'><td>{esc(side)}</td><td>{esc(name)}</td><td>{esc(row['kind'])}</td>"
            f"<td>{_fmt(row['psi'])}<div class='bar'><span style='width:{width:.1f}%'></span></div></td>"
            f"<td>{_fmt(row['ks_statistic'])}</td><td>{_fmt(row['ks_pvalue'])}</td>"
            f"<td>{'DRIFT' if row['drift'] else 'ok'}</td></tr>")
    verdict = "Drift detected" if report["drift"] else ("Not enough samples yet" if not report["enough_data"] else "No drift detected")
    page = f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>kiln drift: {esc(str(report.get('model', '')))}</title>
<style>
body {{ font-family: system-ui, sans-serif; margin: 2rem; color: #222; }}
table {{ border-collapse: collapse; }} td, th {{ padding: .35rem .7rem; border-bottom: 1px solid #ddd; text-align: left; }}
tr.bad td {{ background: #fdecea; }} .bar {{ width: 120px; height: 6px; background: #eee; }}
.bar span {{ display: block; height: 6px; background: #c0392b; }}
</style></head><body>
<h1>Drift report: {esc(str(report.get('model', '')))} version {esc(str(report.get('version', '')))}</h1>
<p><strong>{verdict}</strong> — {report['rows']} sampled rows compared with {report.get('training_rows')} training rows.
Drift = PSI &gt; {report['psi_threshold']} or KS p-value &lt; {report['ks_alpha']} (KS for numeric and text-length columns);
nothing is flagged below {report['min_rows']} samples.</p>
<table><tr><th></th><th>column</th><th>kind</th><th>PSI</th><th>KS statistic</th><th>KS p-value</th><th></th></tr>
{''.join(body)}
</table></body></html>
"""
    return write_text(path, page)
