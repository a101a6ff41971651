"""Small SVG charts drawn by kiln itself: panels of line series and a labelled heatmap.

A training run's two charts as SVG text take a few milliseconds; importing matplotlib and drawing them
as PNG took ~0.9 s, more than training a small table network (docs/benchmarks.md)."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from html import escape

COLOURS = ("#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22", "#17becf")
FONT = 'font-family="DejaVu Sans,Arial,Helvetica,sans-serif"'
_CHAR = 0.6  # average glyph width in ems: text is never measured, only estimated
_MARKERS_UP_TO = 200  # points per series drawn as dots as well as a line
_WIDTH, _HEIGHT = 550, 400  # one panel, px
_LEFT, _RIGHT, _TOP, _BOTTOM = 75, 20, 35, 50
_BLUES = ((247, 251, 255), (198, 219, 239), (107, 174, 214), (33, 113, 181), (8, 48, 107))


@dataclass
class Series:
    label: str
    x: Sequence[float]
    y: Sequence[float]


@dataclass
class Panel:
    title: str
    xlabel: str
    ylabel: str
    series: list[Series] = field(default_factory=list)


def _e(text: object) -> str:
    return escape(str(text), quote=True)


def _text(x: float, y: float, text: object, size: int = 12, anchor: str = "middle", extra: str = "") -> str:
    return f'<text x="{x:.1f}" y="{y:.1f}" font-size="{size}" text-anchor="{anchor}"{extra}>{_e(text)}</text>'


def _width(text: str, size: int) -> float:
    return len(text) * size * _CHAR


def nice_ticks(low: float, high: float, count: int = 6, integer: bool = False) -> list[float]:
    """Round tick values (1, 2, 2.5 or 5 × 10^k apart) covering [low, high], about `count` of them."""
    if not (math.isfinite(low) and math.isfinite(high)):
        raise ValueError("tick range must be finite")
    if high <= low:
        pad = abs(low) * 0.05 or 0.5
        low, high = low - pad, high + pad
    raw = (high - low) / max(count - 1, 1)
    power = 10.0 ** math.floor(math.log10(raw))
    step = next(m * power for m in (1, 2, 2.5, 5, 10) if m * power >= raw * 0.999)
    if integer:
        step = max(1.0, round(step)) if step >= 1 else 1.0
    first = math.floor(low / step + 1e-9) * step
    ticks, k = [], 0
    while True:
        tick = first + k * step
        ticks.append(round(tick, 12))
        if tick >= high - step * 1e-9:
            return ticks
        k += 1


def tick_label(value: float, step: float) -> str:
    """A tick value with as many decimals as its step needs; large numbers in short form (2.5e+04)."""
    if value == 0:
        return "0"
    if abs(value) >= 1e5 or step < 1e-4:
        return f"{value:.3g}"
    decimals = next((d for d in range(10) if abs(step * 10**d - round(step * 10**d)) < 1e-6 * step * 10**d), 10)
    return f"{value:.{decimals}f}"


def _points(series: Series) -> list[tuple[float, float]]:
    return [(float(a), float(b)) for a, b in zip(series.x, series.y) if math.isfinite(float(a)) and math.isfinite(float(b))]


def _legend(series: list[tuple[str, str]], plot: tuple[float, float, float, float],
            points: list[tuple[float, float]]) -> str:
    """A boxed legend in the plot corner that covers the fewest points."""
    left, top, right, bottom = plot
    width = max(_width(label, 11) for label, _ in series) + 38
    height = 18 * len(series) + 8
    corners = [(right - width - 6, top + 6), (right - width - 6, bottom - height - 6), (left + 6, top + 6),
               (left + 6, bottom - height - 6)]
    x0, y0 = min(corners, key=lambda c: sum(c[0] <= px <= c[0] + width and c[1] <= py <= c[1] + height
                                             for px, py in points))
    parts = [f'<rect x="{x0:.1f}" y="{y0:.1f}" width="{width:.1f}" height="{height}" fill="#fff" '
             f'fill-opacity="0.85" stroke="#ccc" rx="3"/>']
    for i, (label, colour) in enumerate(series):
        y = y0 + 13 + 18 * i
        parts.append(f'<line x1="{x0 + 8:.1f}" y1="{y:.1f}" x2="{x0 + 28:.1f}" y2="{y:.1f}" stroke="{colour}" stroke-width="2"/>')
        parts.append(_text(x0 + 34, y + 4, label, 11, "start"))
    return '<g class="legend">' + "".join(parts) + "</g>"


def _span(low: float, high: float) -> tuple[float, float]:
    """The axis range: the data's, 4% wider on each side (a flat series gets ±5% of its value)."""
    if high <= low:
        pad = abs(low) * 0.05 or 0.5
        return low - pad, high + pad
    pad = (high - low) * 0.04
    return low - pad, high + pad


def _step(ticks: list[float]) -> float:
    return ticks[1] - ticks[0] if len(ticks) > 1 else abs(ticks[0]) or 1.0


def _panel(panel: Panel, dx: float, integer_x: bool) -> str:
    """One panel's axes, grid, ticks, labels, series and legend, shifted right by `dx`."""
    left, top, right, bottom = dx + _LEFT, _TOP, dx + _WIDTH - _RIGHT, _HEIGHT - _BOTTOM
    data = [(s, _points(s)) for s in panel.series]
    every = [p for _, pts in data for p in pts] or [(0.0, 0.0), (1.0, 1.0)]
    xs, ys = [p[0] for p in every], [p[1] for p in every]
    x0, x1 = _span(min(xs), max(xs))
    y0, y1 = _span(min(ys), max(ys))
    xticks = [t for t in nice_ticks(x0, x1, 7, integer=integer_x) if x0 <= t <= x1]
    yticks = [t for t in nice_ticks(y0, y1, 7) if y0 <= t <= y1]

    def sx(v: float) -> float:
        return left + (v - x0) / (x1 - x0) * (right - left)

    def sy(v: float) -> float:
        return bottom - (v - y0) / (y1 - y0) * (bottom - top)

    bold = ' font-weight="bold"'
    out = [f'<g class="panel">{_text((left + right) / 2, top - 12, panel.title, 14, extra=bold)}',
           f'<rect x="{left}" y="{top}" width="{right - left}" height="{bottom - top}" fill="#fff" stroke="#333"/>']
    xstep, ystep = _step(xticks), _step(yticks)
    for t in xticks:
        out.append(f'<line x1="{sx(t):.1f}" y1="{top}" x2="{sx(t):.1f}" y2="{bottom + 4}" stroke="#e5e5e5"/>')
        out.append(_text(sx(t), bottom + 17, tick_label(t, xstep), 11, extra=' class="xtick"'))
    for t in yticks:
        out.append(f'<line x1="{left - 4}" y1="{sy(t):.1f}" x2="{right}" y2="{sy(t):.1f}" stroke="#e5e5e5"/>')
        out.append(_text(left - 7, sy(t) + 4, tick_label(t, ystep), 11, "end", ' class="ytick"'))
    out.append(_text((left + right) / 2, bottom + 38, panel.xlabel, 12))
    out.append(_text(dx + 20, (top + bottom) / 2, panel.ylabel, 12, extra=f' transform="rotate(-90 {dx + 20} {(top + bottom) / 2:.1f})"'))
    drawn, scaled = [], []
    for i, (series, pts) in enumerate(data):
        colour = COLOURS[i % len(COLOURS)]
        coords = [(sx(a), sy(b)) for a, b in pts]
        scaled += coords
        line = " ".join(f"{a:.2f},{b:.2f}" for a, b in coords)
        dots = "".join(f'<circle cx="{a:.2f}" cy="{b:.2f}" r="2.5"/>' for a, b in coords) if len(coords) <= _MARKERS_UP_TO else ""
        out.append(f'<g class="series" fill="{colour}"><title>{_e(series.label)}</title>'
                   f'<polyline points="{line}" fill="none" stroke="{colour}" stroke-width="1.5"/>{dots}</g>')
        drawn.append((series.label, colour))
    if drawn:
        out.append(_legend(drawn, (left, top, right, bottom), scaled))
    return "".join(out) + "</g>"


def _svg(width: float, height: float, body: str) -> str:
    return (f'<svg xmlns="http://www.w3.org/2000/svg" width="{width:.0f}" height="{height:.0f}" '
            f'viewBox="0 0 {width:.0f} {height:.0f}" {FONT}><rect width="100%" height="100%" fill="#fff"/>{body}</svg>\n')


def line_chart(panels: list[Panel], integer_x: bool = True) -> str:
    """Panels side by side, each with its series as lines (and dots), nice ticks, axis labels and a legend.
    Non-finite points (a split with no value that epoch) are left out of their line."""
    body = "".join(_panel(p, i * _WIDTH, integer_x) for i, p in enumerate(panels))
    return _svg(_WIDTH * len(panels), _HEIGHT, body)


def _blue(fraction: float) -> str:
    """Matplotlib's 'Blues' colour map, approximately, at `fraction` in [0, 1]."""
    position = min(max(fraction, 0.0), 1.0) * (len(_BLUES) - 1)
    i = min(int(position), len(_BLUES) - 2)
    t = position - i
    r, g, b = (round(a + (c - a) * t) for a, c in zip(_BLUES[i], _BLUES[i + 1]))
    return f"#{r:02x}{g:02x}{b:02x}"


def heatmap(matrix: Sequence[Sequence[float]], labels: list[str], title: str, xlabel: str = "Predicted",
            ylabel: str = "True", show_values: bool = True) -> str:
    """A square matrix as coloured cells (rows top to bottom, columns left to right, labelled), each
    cell's value written in it when `show_values`, a colour bar, and a tooltip per cell."""
    n = len(labels)
    cell = min(max(320 / max(n, 1), 14), 80)
    longest = max((_width(str(lab), 11) for lab in labels), default=0)
    rotate = n > 4 or longest > cell
    left = 45 + longest
    top = 40
    bottom_labels = (longest * 0.72 + 10) if rotate else 18
    side = cell * n
    width = left + side + 100
    height = top + side + bottom_labels + 35
    peak = max((max(row) for row in matrix if len(row)), default=0) or 1
    size = 12 if cell >= 30 else 9
    out = [_text(left + side / 2, 24, title, 14, extra=' font-weight="bold"')]
    for i, row in enumerate(matrix):
        for j, value in enumerate(row):
            x, y = left + j * cell, top + i * cell
            tip = f"{ylabel} {labels[i]}, {xlabel.lower()} {labels[j]}: {value:g}"
            out.append(f'<rect class="cell" x="{x:.1f}" y="{y:.1f}" width="{cell:.1f}" height="{cell:.1f}" '
                       f'fill="{_blue(value / peak)}"><title>{_e(tip)}</title></rect>')
            if show_values:
                colour = "#fff" if value > peak / 2 else "#000"
                out.append(_text(x + cell / 2, y + cell / 2 + size * 0.35, f"{value:g}", size,
                                 extra=f' fill="{colour}" class="count"'))
    out.append(f'<rect x="{left}" y="{top}" width="{side:.1f}" height="{side:.1f}" fill="none" stroke="#333"/>')
    for k, label in enumerate(labels):
        centre = k * cell + cell / 2
        out.append(_text(left - 6, top + centre + 4, label, 11, "end"))
        if rotate:
            x, y = left + centre + 4, top + side + 10
            out.append(_text(x, y, label, 11, "end", f' transform="rotate(-45 {x:.1f} {y:.1f})"'))
        else:
            out.append(_text(left + centre, top + side + 15, label, 11))
    out.append(_text(left + side / 2, top + side + bottom_labels + 20, xlabel, 12))
    out.append(_text(14, top + side / 2, ylabel, 12, extra=f' transform="rotate(-90 14 {top + side / 2:.1f})"'))
    bar_x, steps = left + side + 20, 32
    for k in range(steps):  # top = peak
        out.append(f'<rect x="{bar_x:.1f}" y="{top + k * side / steps:.2f}" width="14" height="{side / steps + 0.5:.2f}" '
                   f'fill="{_blue(1 - (k + 0.5) / steps)}"/>')
    out.append(f'<rect x="{bar_x:.1f}" y="{top}" width="14" height="{side:.1f}" fill="none" stroke="#333"/>')
    out.append(_text(bar_x + 19, top + 9, f"{peak:g}", 10, "start"))
    out.append(_text(bar_x + 19, top + side, "0", 10, "start"))
    return _svg(width, height, "".join(out))
