"""kiln explain: attributions depend on the model (two targets, two answers), a pure-noise column
has near-zero permutation importance, IG is complete, the CLI writes HTML/JSON/PNG, bad input is one line."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from cli_helpers import one_line_error, run_cli
from deploy_models import FILLER, cached_model, frame_for, tabular_frame, train_tiny

import kiln
from kiln.deploy.explain import explain_rows
from kiln.deploy.importance import permutation_importance


@pytest.fixture(scope="module")
def two_models(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """The same inputs and architecture; one model learns y (driven by x1), the other z (driven by x2)."""
    folder = tmp_path_factory.mktemp("two_targets")
    y = train_tiny("mlp", folder / "y", epochs=15)
    z = train_tiny("mlp", folder / "z", epochs=15, output_features=[{"name": "z", "type": "binary"}])
    return y, z


def test_two_targets_get_different_attributions(two_models: tuple[Path, Path]) -> None:
    frame = tabular_frame().head(40)
    rows_y, rows_z = (explain_rows(kiln.load(path), frame) for path in two_models)
    share_y = sum(abs(r["features"]["x1"]) for r in rows_y) / sum(abs(r["features"]["x2"]) for r in rows_y)
    share_z = sum(abs(r["features"]["x1"]) for r in rows_z) / sum(abs(r["features"]["x2"]) for r in rows_z)
    assert share_y > 3 and share_z < 1 / 3  # each model credits the column that drives its own target


def test_noise_column_has_near_zero_permutation_importance(two_models: tuple[Path, Path]) -> None:
    model = kiln.load(two_models[0])
    data = model.preprocessor.transform(tabular_frame(n=600, seed=5))
    result = permutation_importance(model, data, repeats=5)
    features = result["features"]
    assert features["x1"]["mean"] > 0.2
    assert abs(features["noise"]["mean"]) < 0.03 and abs(features["x2"]["mean"]) < 0.03


@pytest.mark.parametrize("kind", ["mlp", "lstm", "transformer", "cnn", "textcnn", "ngram", "ngram_learned"])
def test_integrated_gradients_are_complete(kind: str, tmp_path_factory: pytest.TempPathFactory) -> None:
    model = kiln.load(cached_model(kind, tmp_path_factory))
    steps = 200 if kind == "textcnn" else 50  # max over time switches windows along the path: more steps to converge
    rows = explain_rows(model, frame_for(kind).head(20), steps=steps)
    errors = sorted(r["completeness_error"] for r in rows)
    assert errors[int(0.9 * len(errors)) - 1] <= 0.05
    if kind in ("lstm", "transformer", "textcnn"):
        assert all(len(r["tokens"]["sentence"]) >= 4 for r in rows)
    if kind == "cnn":
        assert len(rows[0]["saliency"]["image"]) == 8
    if kind.startswith("ngram"):  # per n-gram, named: every word of the row, and the sentiment words outweigh the filler
        frame = frame_for(kind).head(20)
        scores = {"cue": 0.0, "filler": 0.0}
        for row, sentence in zip(rows, frame["sentence"]):
            named = dict(row["tokens"]["sentence"])
            assert set(sentence.split()) <= set(named)
            for word in sentence.split():
                scores["filler" if word in FILLER else "cue"] += abs(named[word])
        assert scores["cue"] > 3 * scores["filler"], scores
    if kind == "transformer":  # attention maps: one layer, tokens × tokens, each query's weights sum to 1
        tokens, maps = rows[0]["tokens"]["sentence"], rows[0]["attention"]["sentence"]
        assert len(maps) == 1 and len(maps[0]) == len(tokens) == len(maps[0][0])
        assert all(abs(sum(query) - 1.0) < 1e-4 for query in maps[0])
    else:
        assert rows[0]["attention"] == {}


def test_cli_writes_html_json_png(tmp_path_factory: pytest.TempPathFactory, tmp_path: Path, capsys, monkeypatch) -> None:
    model_dir = cached_model("lstm", tmp_path_factory)
    csv = tmp_path / "rows.csv"
    frame_for("lstm").head(30).to_csv(csv, index=False)
    code, out, err = run_cli(capsys, monkeypatch, "explain", model_dir, csv, "--rows", "0:3", "-o", tmp_path / "exp", "--repeats", "2")
    assert code == 0, err
    assert "completeness error p90" in out
    report = json.loads((tmp_path / "exp" / "explanations.json").read_text())
    assert len(report["rows"]) == 3 and report["importance"]["data"] == "DATA"
    page = (tmp_path / "exp" / "explain.html").read_text()
    assert "<span title=" in page and (tmp_path / "exp" / "importance.png").is_file()


def test_bad_rows_are_one_line(tmp_path_factory: pytest.TempPathFactory, tmp_path: Path, capsys, monkeypatch) -> None:
    model_dir = cached_model("mlp", tmp_path_factory)
    csv = tmp_path / "rows.csv"
    frame_for("mlp").head(5).to_csv(csv, index=False)
    one_line_error(run_cli(capsys, monkeypatch, "explain", model_dir, csv, "--rows", "7", "-o", tmp_path / "e"), "--rows 7", "5 rows")
    one_line_error(run_cli(capsys, monkeypatch, "explain", model_dir, csv, "--rows", "a:b", "-o", tmp_path / "e"), "--rows")
    one_line_error(run_cli(capsys, monkeypatch, "explain", model_dir, csv, "--steps", "1", "-o", tmp_path / "e"), "--steps")
