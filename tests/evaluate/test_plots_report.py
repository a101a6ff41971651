"""The run charts are SVG files (parsed back: one line per series, one point per epoch, at the right
place on the axes; every count of a confusion matrix shown) written atomically; the HTML report is
self-contained and escaped, with the charts inline."""

from __future__ import annotations

import base64
import re
import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from kiln.evaluate import plot_confusion_matrix, plot_loss_curves, write_report
from kiln.io import atomic_path
from kiln.evaluate.metrics import classification_metrics, regression_metrics

NS = {"s": "http://www.w3.org/2000/svg"}


def _history(with_validation: bool = True, second: str | None = "accuracy") -> pd.DataFrame:
    frame = {"epoch": [1, 2, 3], "train_loss": [0.9, 0.6, 0.4]}
    if with_validation:
        frame["validation_loss"] = [1.0, np.nan, 0.5]  # gaps (no validation that epoch) are fine
    if second:
        frame[f"train_{second}"] = [0.5, 0.7, 0.8]
        frame[f"validation_{second}"] = [0.4, 0.6, 0.7]
    return pd.DataFrame(frame)


def _axis(panel: ET.Element, cls: str, coord: str) -> tuple[float, float]:
    """(scale, offset) mapping a pixel coordinate back to a value, from the panel's tick labels."""
    ticks = [(float(t.get(coord)), float(t.text)) for t in panel.iterfind(f"s:text[@class='{cls}']", NS)]
    assert len(ticks) >= 2
    (p0, v0), (p1, v1) = ticks[0], ticks[-1]
    if coord == "y":  # labels sit 4 px below their grid line
        p0, p1 = p0 - 4, p1 - 4
    scale = (v1 - v0) / (p1 - p0)
    return scale, v0 - scale * p0


def _series(svg: Path) -> list[dict[str, list[tuple[float, float]]]]:
    """Per panel: each series' points, mapped back to data values through the axis ticks."""
    root = ET.parse(svg).getroot()
    panels = []
    for panel in root.iterfind("s:g[@class='panel']", NS):
        (xs, xo), (ys, yo) = _axis(panel, "xtick", "x"), _axis(panel, "ytick", "y")
        lines = {}
        for group in panel.iterfind("s:g[@class='series']", NS):
            (polyline,) = group.findall("s:polyline", NS)
            points = [tuple(map(float, p.split(","))) for p in polyline.get("points").split()]
            lines[group.find("s:title", NS).text] = [(xs * x + xo, ys * y + yo) for x, y in points]
            assert len(group.findall("s:circle", NS)) == len(points)
        panels.append(lines)
    return panels


def test_loss_curves_svg_draws_every_series_at_its_values(tmp_path: Path) -> None:
    history = pd.DataFrame({"epoch": np.arange(1, 30), "train_loss": np.linspace(0.7, 0.2, 29) ** 2,
                            "validation_loss": 0.4 + 0.1 * np.sin(np.arange(29)),
                            "train_accuracy": np.linspace(0.6, 0.93, 29), "validation_accuracy": np.full(29, 0.84)})
    path = plot_loss_curves(history, tmp_path / "loss_curves.svg")
    assert path == tmp_path / "loss_curves.svg"
    loss, accuracy = _series(path)
    assert list(loss) == ["train_loss", "validation_loss"] and list(accuracy) == ["train_accuracy", "validation_accuracy"]
    for panel in (loss, accuracy):
        for name, points in panel.items():
            assert len(points) == 29  # one point per epoch, in epoch order
            assert np.allclose([x for x, _ in points], history["epoch"], atol=0.05)
            assert np.allclose([y for _, y in points], history[name], atol=2e-3), name
    text = path.read_text()
    for label in (">Loss<", ">Accuracy<", ">epoch<", ">loss<", ">accuracy<"):
        assert label in text  # titles and axis labels
    assert [p.name for p in tmp_path.iterdir()] == ["loss_curves.svg"]  # no temp files


def test_loss_curves_gaps_second_panel_and_iterations(tmp_path: Path) -> None:
    (loss, accuracy) = _series(plot_loss_curves(_history(), tmp_path / "curves.svg"))
    assert [round(x) for x, _ in loss["validation_loss"]] == [1, 3]  # the missing epoch is left out
    assert np.allclose([y for _, y in loss["validation_loss"]], [1.0, 0.5], atol=2e-3)
    (only,) = _series(plot_loss_curves(_history(with_validation=False, second=None), tmp_path / "loss.svg"))
    assert list(only) == ["train_loss"]
    r2 = plot_loss_curves(_history(second="r2").rename(columns={"epoch": "iteration"}), tmp_path / "sub" / "r2.svg",
                          x="iteration")
    assert r2.parent.name == "sub" and len(_series(r2)) == 2 and ">R²<" in r2.read_text(encoding="utf-8")
    big = _history(second=None).assign(train_loss=[25000.0, 12000.0, 8000.0])
    (panel,) = _series(plot_loss_curves(big, tmp_path / "big.svg"))
    assert np.allclose([y for _, y in panel["train_loss"]], [25000, 12000, 8000], rtol=2e-3)


def test_loss_curves_requires_train_loss(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="train_loss"):
        plot_loss_curves(pd.DataFrame({"epoch": [1]}), tmp_path / "x.svg")
    assert not (tmp_path / "x.svg").exists()


def test_confusion_matrix_svg_shows_every_count(tmp_path: Path) -> None:
    cm = np.array([[5, 1, 0], [2, 7, 1], [0, 3, 19]])
    out = plot_confusion_matrix(cm, ["a <b>", "c", "d"], tmp_path / "cm.svg", title="Test")
    root = ET.parse(out).getroot()
    counts = [int(t.text) for t in root.iterfind(".//s:text[@class='count']", NS)]
    assert counts == cm.ravel().tolist()  # row by row, left to right
    cells = root.findall(".//s:rect[@class='cell']", NS)
    assert len(cells) == 9 and cells[1].find("s:title", NS).text == "True a <b>, predicted c: 1"
    darkest = max(cells, key=lambda c: -int(c.get("fill")[1:3], 16))
    assert darkest is cells[8]  # the largest count is the darkest cell
    texts = {t.text for t in root.iter(f"{{{NS['s']}}}text")}
    assert {"Test", "Predicted", "True", "a <b>", "c", "d"} <= texts
    with pytest.raises(ValueError, match="does not match"):
        plot_confusion_matrix([[1, 2], [3, 4]], list("abc"), tmp_path / "bad.svg")
    many = plot_confusion_matrix(np.eye(40, dtype=int), [f"class {i}" for i in range(40)], tmp_path / "cm40.svg")
    assert not ET.parse(many).getroot().findall(".//s:text[@class='count']", NS)  # too many: tooltips only


def test_atomic_path_replaces_only_on_success(tmp_path: Path) -> None:
    target = tmp_path / "f.txt"
    target.write_text("old")
    with pytest.raises(RuntimeError):
        with atomic_path(target) as tmp:
            tmp.write_text("partial")
            raise RuntimeError("boom")
    assert target.read_text() == "old"
    with atomic_path(target) as tmp:
        assert tmp.parent == tmp_path and tmp.suffix == ".txt"
        tmp.write_text("new")
    assert target.read_text() == "new"
    assert [p.name for p in tmp_path.iterdir()] == ["f.txt"]


@pytest.fixture
def report_inputs(tmp_path: Path) -> dict:
    p1 = np.array([0.2, 0.7, 0.4, 0.6, 0.9])
    val = classification_metrics(np.array([0, 1, 1, 0, 1]), np.column_stack([1 - p1, p1]), ["died", "lived"], 0.4321)
    image = plot_confusion_matrix(val["confusion_matrix"], ["died", "lived"], tmp_path / "cm.svg")
    png = tmp_path / "other.png"
    png.write_bytes(b"\x89PNG\r\n\x1a\n not really")
    return {
        "metrics": {"validation": val, "test": val},
        "history": _history(),
        "config": {"name": "</pre><script>alert(1)</script>", "trainer": {"epochs": 3, "lr": 0.001}},
        "images": [image, png],
        "data_report": {"rows_loaded": 891, "duplicates_dropped": 0, "coerced_non_numeric": {"Age": 3}},
    }


def test_report_contents(tmp_path: Path, report_inputs: dict) -> None:
    path = write_report(tmp_path / "run", title="Titanic <run>", **report_inputs)
    assert path == tmp_path / "run" / "report.html"
    html = path.read_text(encoding="utf-8")
    assert html.startswith("<!DOCTYPE html>")
    assert "<h1>Titanic &lt;run&gt;</h1>" in html
    # metric values (4 decimals), splits and per-class table
    for text in ("0.6000", "0.6667", "0.8333", "0.4321", "validation", "test", "Per class", "died", "lived"):
        assert text in html
    # kiln's SVG charts inline (so still one file), other images base64
    svg = report_inputs["images"][0].read_text(encoding="utf-8").strip()
    assert html.count("<svg") == 1 and svg in html and "<figcaption>cm.svg</figcaption>" in html
    encoded = base64.b64encode(report_inputs["images"][1].read_bytes()).decode()
    assert f"data:image/png;base64,{encoded}" in html
    # data report and history rendered
    assert "<th>rows_loaded</th><td>891</td>" in html
    assert "<th>Age</th><td>3</td>" in html
    assert "Training history" in html and "n/a" in html  # NaN validation loss
    # config as yaml, escaped; no active script and nothing loaded from elsewhere
    assert "epochs: 3" in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html and "&lt;/pre&gt;" in html
    assert "<script" not in html.lower()
    assert not re.search(r"(src|href)=\"(https?:)?//", html) and "<link" not in html
    assert [p.name for p in path.parent.iterdir()] == ["report.html"]


def test_report_per_feature_metrics_and_missing_parts(tmp_path: Path) -> None:
    reg = regression_metrics(np.array([1.0, 2.0, 3.0, 4.0]), np.array([1.5, 2.0, 2.5, 5.0]))
    metrics = {"test": {"Fare": reg, "Age": {**reg, "r2": None}}}
    path = write_report(tmp_path, metrics, None, {}, [tmp_path / "missing.png"])
    html = path.read_text(encoding="utf-8")
    assert "test — Fare" in html and "test — Age" in html
    assert "0.7000" in html and "0.3750" in html and "n/a" in html
    assert "Missing image: missing.png" in html
    assert "Training history" not in html and "<h2>Data</h2>" not in html


def test_add_section_goes_after_the_metrics_and_replaces_itself(tmp_path: Path, report_inputs: dict) -> None:
    from kiln.evaluate.report import add_section, html_table

    path = write_report(tmp_path / "run", **report_inputs)
    add_section(path, "compression", "Compression", html_table(["variant", "size"], [["int8 <a>", 1.5]]))
    add_section(path, "compression", "Compression", html_table(["variant", "size"], [["int8 again", 2.5]]))
    html = path.read_text(encoding="utf-8")
    assert html.count('<section id="compression">') == 1 and "int8 again" in html and "int8 &lt;a&gt;" not in html
    assert html.index("<h2>Metrics</h2>") < html.index("<h2>Compression</h2>") < html.index("<h2>Plots</h2>")
    page = add_section(tmp_path / "alone.html", "compression", "Compression", "<p>x</p>").read_text(encoding="utf-8")
    assert page.startswith("<!DOCTYPE html>") and "<p>x</p>" in page
