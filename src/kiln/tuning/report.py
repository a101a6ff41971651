"""report.html of a search: the summary, the best values, optimisation history, the reported metric
of every trial by round (pruned ones stop early), fANOVA parameter importances, and the trials table."""

from __future__ import annotations

import base64
import io
import json
from html import escape
from typing import TYPE_CHECKING, Any

import pandas as pd

from kiln.io import write_text

if TYPE_CHECKING:
    from kiln.tuning.search import Search

CSS = """body{font-family:system-ui,sans-serif;margin:0;background:#f6f7f9;color:#1f2328}
main{max-width:1100px;margin:0 auto;padding:24px}h2{border-bottom:1px solid #d0d7de;padding-bottom:4px;margin-top:28px}
table{border-collapse:collapse;background:#fff;margin:8px 0}th,td{border:1px solid #d0d7de;padding:3px 8px;text-align:left}
th{background:#eef1f4}figure{display:inline-block;background:#fff;border:1px solid #d0d7de;padding:8px;margin:8px 12px 8px 0}
figure img{max-width:100%}.note{color:#656d76}pre{background:#fff;border:1px solid #d0d7de;padding:12px;overflow-x:auto}"""


def _png(fig: Any) -> str:
    import matplotlib.pyplot as plt

    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=100, pil_kwargs={"compress_level": 1})
    plt.close(fig)
    return base64.b64encode(buffer.getvalue()).decode()


def _curves_figure() -> tuple[Any, Any]:
    """A 6.5 x 4 in figure with fixed margins for numeric tick labels and one-line axis labels and title:
    laying it out by measuring every label (bbox_inches="tight", constrained layout) costs a draw."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6.5, 4))
    fig.subplots_adjust(left=0.95 / 6.5, right=1 - 0.15 / 6.5, bottom=0.55 / 4, top=1 - 0.35 / 4)
    return fig, ax


def _figure(data: str, caption: str) -> str:
    return f'<figure><img src="data:image/png;base64,{data}" alt="{escape(caption)}"><figcaption>{escape(caption)}</figcaption></figure>'


def history_plot(trials: list[Any], search: "Search") -> str:
    from kiln.tuning.outputs import trial_state, trial_value

    fig, ax = _curves_figure()
    styles = {"complete": ("o", "#0969da"), "pruned": ("x", "#8c959f")}
    for state, (marker, color) in styles.items():
        points = [(t.number, trial_value(t)) for t in trials if trial_state(t) == state and trial_value(t) is not None]
        if points:
            ax.scatter(*zip(*points), marker=marker, color=color, label=f"{state} ({len(points)})", zorder=3)
    complete = sorted((t.number, t.value) for t in trials if trial_state(t) == "complete")
    best, line = None, []
    for number, value in complete:
        better = best is None or (value < best if search.tune.direction == "minimize" else value > best)
        best = value if better else best
        line.append((number, best))
    if line:
        ax.step(*zip(*line), where="post", color="#cf222e", label="best so far")
    ax.set_xlabel("trial")
    ax.set_ylabel(search.tune.metric)
    ax.set_title("Optimisation history (pruned: last reported value)")
    ax.legend()
    return _png(fig)


def curves_plot(trials: list[Any], search: "Search") -> str:
    from kiln.tuning.outputs import trial_state

    fig, ax = _curves_figure()
    for t in trials:
        if not t.intermediate_values:
            continue
        steps = sorted(t.intermediate_values)
        pruned = trial_state(t) == "pruned"
        ax.plot(steps, [t.intermediate_values[s] for s in steps], color="#8c959f" if pruned else "#0969da",
                alpha=0.5 if pruned else 0.8, linewidth=1)
    ax.set_xlabel(search.unit)
    ax.set_ylabel(search.tune.metric)
    ax.set_title("Reported metric per trial (grey: pruned)")
    finite = [v for t in trials for v in t.intermediate_values.values() if pd.notna(v) and abs(v) < 1e6]
    if finite:
        low, high = min(finite), sorted(finite)[int(0.9 * (len(finite) - 1))]
        ax.set_ylim(low - 0.05 * (high - low + 1e-9), high + 0.3 * (high - low + 1e-9))
    return _png(fig)


def importance_plot(importances: dict[str, float]) -> str:
    import matplotlib.pyplot as plt

    names = list(importances)[::-1]
    fig, ax = plt.subplots(figsize=(6.5, 0.5 * len(names) + 1.2), layout="constrained")
    ax.barh(names, [importances[n] for n in names], color="#0969da")
    ax.set_xlabel("importance (fANOVA, share of the variance of the objective)")
    ax.set_title("Parameter importances")
    return _png(fig)


def _table(frame: pd.DataFrame) -> str:
    head = "".join(f"<th>{escape(str(c))}</th>" for c in frame.columns)
    body = "".join("<tr>" + "".join(f"<td>{escape(_cell(v))}</td>" for v in row) + "</tr>" for row in frame.itertuples(index=False))
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _cell(value: Any) -> str:
    if value is None or (isinstance(value, float) and pd.isna(value)):
        return ""
    return f"{value:.5g}" if isinstance(value, float) else str(value)


def write_report(search: "Search", trials: list[Any], frame: pd.DataFrame, summary: dict[str, Any],
                 importances: dict[str, float]) -> None:
    figures = [_figure(history_plot(trials, search), "Optimisation history"),
               _figure(curves_plot(trials, search), "Metric by round")]
    if importances:
        figures.append(_figure(importance_plot(importances), "Parameter importances"))
    else:
        figures.append('<p class="note">Parameter importances need at least two complete trials with varying values.</p>')
    overview = pd.DataFrame([(k, v if not isinstance(v, dict) else json.dumps(v)) for k, v in summary.items()
                             if k not in ("best_params", "importances")], columns=["", "value"])
    best = pd.DataFrame(list(summary["best_params"].items()), columns=["parameter", "best value"])
    best["best value"] = best["best value"].map(lambda v: json.dumps(v) if isinstance(v, (list, dict)) else v)
    import yaml

    html = f"""<!doctype html><html><head><meta charset="utf-8"><title>kiln tune report</title><style>{CSS}</style></head>
<body><main><h1>kiln tune report</h1><p class="note">{escape(str(search.directory))}</p>
<h2>Summary</h2>{_table(overview)}<h2>Best trial</h2>{_table(best)}
<p>Best config: <code>best.yaml</code> (train it with <code>kiln train best.yaml</code>); its model: <code>best/</code>.</p>
<h2>Plots</h2>{''.join(figures)}
<h2>Trials</h2>{_table(frame)}
<h2>Search config</h2><pre>{escape(yaml.safe_dump(search.raw, sort_keys=False))}</pre></main></body></html>"""
    write_text(search.directory / "report.html", html)
