"""kiln's own SVG charts: round tick values, labels with the decimals their step needs, escaped text."""

from __future__ import annotations

import xml.etree.ElementTree as ET

import pytest

from kiln.evaluate.svg import Panel, Series, heatmap, line_chart, nice_ticks, tick_label


@pytest.mark.parametrize(("low", "high", "integer", "expected"), [
    (0.21, 0.66, False, [0.2, 0.3, 0.4, 0.5, 0.6, 0.7]),
    (1, 29, True, [0, 10, 20, 30]),
    (1, 29.5, False, [0, 10, 20, 30]),
    (0, 5, True, [0, 1, 2, 3, 4, 5]),
    (0.0, 1.0, False, [0.0, 0.2, 0.4, 0.6, 0.8, 1.0]),
    (7500, 25000, False, [5000, 10000, 15000, 20000, 25000]),
    (1, 3, True, [1, 2, 3]),
    (3, 3, True, [2, 3, 4]),  # one point: a range around it
    (-0.013, 0.004, False, [-0.015, -0.01, -0.005, 0.0, 0.005]),
])
def test_nice_ticks_cover_the_range_with_round_steps(low: float, high: float, integer: bool, expected: list) -> None:
    ticks = nice_ticks(low, high, 6, integer=integer)
    assert ticks == pytest.approx(expected)


def test_nice_ticks_reject_non_finite_ranges() -> None:
    with pytest.raises(ValueError, match="finite"):
        nice_ticks(0.0, float("inf"))


@pytest.mark.parametrize(("value", "step", "text"), [
    (0.25, 0.25, "0.25"), (0.5, 0.25, "0.50"), (0.3, 0.1, "0.3"), (20, 5, "20"), (0, 0.1, "0"),
    (250000, 50000, "2.5e+05"), (1.5e-5, 5e-6, "1.5e-05"),
])
def test_tick_labels_have_the_decimals_their_step_needs(value: float, step: float, text: str) -> None:
    assert tick_label(value, step) == text


def test_text_is_escaped_and_non_finite_points_are_left_out() -> None:
    chart = line_chart([Panel("a <b> & c", "epoch", "loss", [Series("x<y", [1, 2, 3], [0.5, float("nan"), float("inf")]),
                                                             Series("empty", [], [])])])
    root = ET.fromstring(chart)  # well-formed XML despite the markup in the names
    texts = {t.text for t in root.iter("{http://www.w3.org/2000/svg}text")}
    assert {"a <b> & c", "x<y", "empty"} <= texts
    polylines = root.findall(".//{http://www.w3.org/2000/svg}polyline")
    assert [len(p.get("points").split()) for p in polylines] == [1, 0]
    cells = ET.fromstring(heatmap([[0, 0], [0, 0]], ["&", "'"], "all zero")).findall(".//{http://www.w3.org/2000/svg}rect[@class='cell']")
    assert len(cells) == 4  # an all-zero matrix draws (no division by zero)
