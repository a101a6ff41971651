"""Plots write real PNG files atomically; the HTML report is self-contained and escaped."""

from __future__ import annotations

import base64
import re
import struct
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import pytest

from kiln.evaluate import plot_confusion_matrix, plot_loss_curves, write_report
from kiln.io import atomic_path
from kiln.evaluate.metrics import classification_metrics, regression_metrics

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def _png_width(path: Path) -> int:
    data = path.read_bytes()
    assert data[:8] == PNG_MAGIC
    return struct.unpack(">I", data[16:20])[0]  # IHDR width


def _history(with_validation: bool = True, second: str | None = "accuracy") -> pd.DataFrame:
    frame = {"epoch": [1, 2, 3], "train_loss": [0.9, 0.6, 0.4]}
    if with_validation:
        frame["validation_loss"] = [1.0, np.nan, 0.5]  # gaps (no validation that epoch) are fine
    if second:
        frame[f"train_{second}"] = [0.5, 0.7, 0.8]
        frame[f"validation_{second}"] = [0.4, 0.6, 0.7]
    return pd.DataFrame(frame)


def test_loss_curves_png_and_second_panel(tmp_path: Path) -> None:
    two = plot_loss_curves(_history(), tmp_path / "curves.png")
    one = plot_loss_curves(_history(with_validation=False, second=None), tmp_path / "loss.png")
    r2 = plot_loss_curves(_history(second="r2"), tmp_path / "sub" / "r2.png")
    assert two == tmp_path / "curves.png" and r2.parent.name == "sub"
    assert _png_width(two) > 1.5 * _png_width(one)  # accuracy panel added
    assert _png_width(r2) > 1.5 * _png_width(one)  # r2 panel when no accuracy
    assert sorted(p.name for p in tmp_path.iterdir()) == ["curves.png", "loss.png", "sub"]  # no temp files
    assert plt.get_fignums() == []  # figures closed


def test_loss_curves_requires_train_loss(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="train_loss"):
        plot_loss_curves(pd.DataFrame({"epoch": [1]}), tmp_path / "x.png")
    assert not (tmp_path / "x.png").exists()


def test_confusion_matrix_png(tmp_path: Path) -> None:
    out = plot_confusion_matrix(np.array([[5, 1], [2, 7]]), ["no", "yes"], tmp_path / "cm.png")
    assert out.read_bytes()[:8] == PNG_MAGIC and out.stat().st_size > 1000
    plot_confusion_matrix([[1, 0, 0], [0, 2, 1], [0, 0, 3]], list("abc"), tmp_path / "cm3.png", title="Test")
    assert (tmp_path / "cm3.png").read_bytes()[:8] == PNG_MAGIC
    with pytest.raises(ValueError, match="does not match"):
        plot_confusion_matrix([[1, 2], [3, 4]], list("abc"), tmp_path / "bad.png")
    assert plt.get_fignums() == []


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
    image = plot_confusion_matrix(val["confusion_matrix"], ["died", "lived"], tmp_path / "cm.png")
    return {
        "metrics": {"validation": val, "test": val},
        "history": _history(),
        "config": {"name": "</pre><script>alert(1)</script>", "trainer": {"epochs": 3, "lr": 0.001}},
        "images": [image],
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
    # image embedded byte-for-byte
    encoded = base64.b64encode(report_inputs["images"][0].read_bytes()).decode()
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
