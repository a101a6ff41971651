"""Self-contained HTML run report: metrics, plots (SVG inline, other images base64), data report and config."""

from __future__ import annotations

import base64
import json
from collections.abc import Iterable, Mapping
from datetime import datetime, timezone
from html import escape
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from kiln.io import atomic_path
from kiln.evaluate.metrics import flatten_scalars, format_value

_MAX_HISTORY_ROWS = 25
_MIME = {".png": "image/png", ".jpg": "image/jpeg", ".jpeg": "image/jpeg", ".svg": "image/svg+xml"}
_PER_CLASS_COLUMNS = ("precision", "recall", "f1", "support")

_CSS = """
body{font-family:system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;margin:0;background:#f6f7f9;color:#1f2328}
main{max-width:1000px;margin:0 auto;padding:24px}
h1{margin:0 0 4px}h2{margin-top:32px;border-bottom:1px solid #d0d7de;padding-bottom:4px}
.meta{color:#656d76;margin:0 0 16px}
table{border-collapse:collapse;margin:8px 0 16px;background:#fff}
th,td{border:1px solid #d0d7de;padding:4px 10px;text-align:left;vertical-align:top}
th{background:#eef1f4}td.num{text-align:right;font-variant-numeric:tabular-nums}
figure{display:inline-block;max-width:100%;box-sizing:border-box;margin:8px 16px 16px 0;background:#fff;padding:8px;border:1px solid #d0d7de}
figure img,figure svg{max-width:100%;height:auto}figcaption{color:#656d76;font-size:.9em}
pre{background:#fff;border:1px solid #d0d7de;padding:12px;overflow-x:auto}
.note{color:#656d76}
"""


def _e(value: Any) -> str:
    return escape(str(value), quote=True)


def _cell(value: Any) -> str:
    numeric = value is None or isinstance(value, (int, float, np.number)) and not isinstance(value, bool)
    cls = ' class="num"' if numeric else ""
    return f"<td{cls}>{_e(format_value(value))}</td>"


def html_table(header: Iterable[Any], rows: Iterable[Iterable[Any]]) -> str:
    """An HTML table; numbers right-aligned and formatted like the metrics."""
    return _table(header, rows)


def _table(header: Iterable[Any], rows: Iterable[Iterable[Any]]) -> str:
    head = "".join(f"<th>{_e(h)}</th>" for h in header)
    body = "".join("<tr>" + "".join(_cell(v) for v in row) + "</tr>" for row in rows)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _is_per_feature(split_metrics: Mapping[str, Any]) -> bool:
    """True when a split maps output-feature names to metric dicts."""
    return bool(split_metrics) and all(isinstance(v, Mapping) for v in split_metrics.values())


def _metric_block(heading: str, values: Mapping[str, Any]) -> str:
    flat = flatten_scalars(values)
    parts = [f"<h3>{_e(heading)}</h3>", _table(("metric", "value"), flat.items())]
    per_class = values.get("per_class")
    if isinstance(per_class, Mapping) and per_class:
        rows = ([name, *(stats.get(c) for c in _PER_CLASS_COLUMNS)] for name, stats in per_class.items())
        parts += ["<h4>Per class</h4>", _table(("class", *_PER_CLASS_COLUMNS), rows)]
    return "\n".join(parts)


def _metrics_section(metrics: Mapping[str, Any]) -> str:
    blocks = []
    for split, values in metrics.items():
        if not isinstance(values, Mapping):
            continue
        if _is_per_feature(values):
            blocks += [_metric_block(f"{split} — {feature}", sub) for feature, sub in values.items()]
        else:
            blocks.append(_metric_block(str(split), values))
    return "<h2>Metrics</h2>\n" + ("\n".join(blocks) or '<p class="note">No metrics.</p>')


def _history_section(history: pd.DataFrame | None) -> str:
    if history is None or history.empty:
        return ""
    shown = history
    note = f"{len(history)} epochs"
    if len(history) > _MAX_HISTORY_ROWS:
        idx = np.unique(np.linspace(0, len(history) - 1, _MAX_HISTORY_ROWS).round().astype(int))
        shown = history.iloc[idx]
        note += f", showing {len(shown)}"
    rows = ([None if pd.isna(v) else v for v in row] for row in shown.itertuples(index=False))
    return f'<h2>Training history</h2><p class="note">{_e(note)}</p>' + _table(history.columns, rows)


def _image_figure(path: Path) -> str:
    path = Path(path)
    if not path.is_file():
        return f'<p class="note">Missing image: {_e(path.name)}</p>'
    if path.suffix.lower() == ".svg":  # kiln's own charts: inline, so they stay text and scale
        svg = path.read_text(encoding="utf-8")
        svg = svg[svg.find("<svg"):] if "<svg" in svg else ""
        return f"<figure>{svg.strip()}<figcaption>{_e(path.name)}</figcaption></figure>"
    data = base64.b64encode(path.read_bytes()).decode("ascii")
    mime = _MIME.get(path.suffix.lower(), "image/png")
    return (
        f'<figure><img src="data:{mime};base64,{data}" alt="{_e(path.stem)}">'
        f"<figcaption>{_e(path.name)}</figcaption></figure>"
    )


def _images_section(images: list[Path]) -> str:
    if not images:
        return ""
    return "<h2>Plots</h2>\n" + "\n".join(_image_figure(p) for p in images)


def _nested(value: Any) -> str:
    """Render dicts as key/value tables and lists as bullet lists, recursively."""
    if isinstance(value, Mapping):
        if not value:
            return '<span class="note">(empty)</span>'
        rows = "".join(f"<tr><th>{_e(k)}</th><td>{_nested(v)}</td></tr>" for k, v in value.items())
        return f"<table><tbody>{rows}</tbody></table>"
    if isinstance(value, (list, tuple)):
        return "<ul>" + "".join(f"<li>{_nested(v)}</li>" for v in value) + "</ul>"
    return _e(format_value(value))


def _data_section(data_report: dict | None) -> str:
    if not data_report:
        return ""
    return "<h2>Data</h2>\n" + _nested(data_report)


def _config_text(config: Mapping[str, Any]) -> str:
    """YAML (when pyyaml is available) or JSON text of the config, plain types only."""
    plain = json.loads(json.dumps(config, default=str))
    try:
        import yaml
    except ImportError:
        return json.dumps(plain, indent=2)
    return yaml.safe_dump(plain, sort_keys=False, default_flow_style=False, allow_unicode=True)


def _config_section(config: Mapping[str, Any]) -> str:
    return f"<h2>Config</h2>\n<pre>{_e(_config_text(config))}</pre>"


def _page(title: str, meta: str, body: str) -> str:
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{_e(title)}</title><style>{_CSS}</style></head>\n"
        f'<body><main><h1>{_e(title)}</h1><p class="meta">{_e(meta)}</p>\n{body}\n</main></body></html>\n'
    )


def _section(key: str, heading: str, body: str) -> str:
    return f'<section id="{_e(key)}"><h2>{_e(heading)}</h2>\n{body}\n</section><!-- /{_e(key)} -->'


def add_section(path: Path, key: str, heading: str, body: str, title: str = "kiln report") -> Path:
    """Put a section (HTML `body` under `heading`) into the report at `path`, after its metrics; a section
    with the same `key` is replaced; a missing report becomes a page holding just this section."""
    path = Path(path)
    block = _section(key, heading, body)
    if not path.is_file():
        html = _page(title, f"generated {datetime.now(timezone.utc).strftime('%Y-%m-%d %H:%M UTC')}", block)
    else:
        html = path.read_text(encoding="utf-8")
        start, end = html.find(f'<section id="{_e(key)}">'), html.find(f"<!-- /{_e(key)} -->")
        if start >= 0 and end > start:
            html = html[:start] + block + html[end + len(f"<!-- /{_e(key)} -->"):]
        else:
            anchor = next((i for i in (html.find("<h2>Plots</h2>"), html.find("<h2>Training history</h2>"),
                                       html.find("</main>")) if i >= 0), len(html))
            html = html[:anchor] + block + "\n" + html[anchor:]
    with atomic_path(path) as tmp:
        tmp.write_text(html, encoding="utf-8")
    return path


def render_report(
    metrics: dict,
    history: pd.DataFrame | None,
    config: dict,
    images: list[Path],
    data_report: dict | None = None,
    title: str = "kiln run report",
    subtitle: str = "",
) -> str:
    """The report as one self-contained HTML string."""
    stamp = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    meta = " · ".join(x for x in (subtitle, f"generated {stamp}") if x)
    sections = [
        _metrics_section(metrics),
        _images_section(images),
        _history_section(history),
        _data_section(data_report),
        _config_section(config),
    ]
    return _page(title, meta, "\n".join(s for s in sections if s))


def write_report(
    run_dir: Path,
    metrics: dict,
    history: pd.DataFrame | None,
    config: dict,
    images: list[Path],
    data_report: dict | None = None,
    title: str = "kiln run report",
) -> Path:
    """Write ``run_dir/report.html`` atomically and return its path."""
    run_dir = Path(run_dir)
    html = render_report(metrics, history, config, images, data_report, title, subtitle=run_dir.name)
    path = run_dir / "report.html"
    with atomic_path(path) as tmp:
        tmp.write_text(html, encoding="utf-8")
    return path
