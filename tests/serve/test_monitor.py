"""Monitoring: masking, training statistics, the sample store, drift (PSI/KS/prediction shift), `kiln monitor`."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pandas as pd
import pytest
from _helpers import client_for, make_frame, run
from typer.testing import CliRunner

from kiln.cli import app as cli_app
from kiln.monitor import mask_text
from kiln.monitor.drift import drift_report, load_stats, psi
from kiln.monitor.sampling import SampleStore
from kiln.serve.app import create_app
from kiln.serve.settings import ServeSettings
from kiln.serve.versions import ModelStore


def test_masking() -> None:
    text = "mail jane.doe+x@example.co.uk or call +1 (555) 123-4567 / 020 7946 0958, card 4111 1111 1111 1111."
    masked = mask_text(text)
    assert masked == "mail <email> or call <phone> / <phone>, card <card>."
    assert mask_text("card 4111-1111-1111-1111 and 5500005555555559") == "card <card> and <card>"
    # not personal data: small numbers, a date, an amount, an id that fails the card check stays a number
    for keep in ("order 42 shipped", "on 2024-01-15", "total 1234.50 EUR", "rows 7 and 12"):
        assert mask_text(keep) == keep


def test_training_writes_stats(run_dir: Path) -> None:
    stats = load_stats(run_dir / "model")
    assert stats["split"] == "train" and stats["rows"] > 50
    x, color = stats["features"]["x"], stats["features"]["color"]
    assert x["kind"] == "numeric" and len(x["proportions"]) == len(x["edges"]) + 1 and x["sample"]
    assert abs(sum(x["proportions"]) + x["missing"] - 1) < 1e-9
    assert set(color["frequencies"]) == {"red", "green", "blue"}
    assert stats["predictions"]["y"]["kind"] == "categorical"


def test_drift_flags_shift_and_passes_unshifted(run_dir: Path) -> None:
    import kiln

    stats = load_stats(run_dir / "model")
    model = kiln.load(run_dir)
    same = make_frame(300, seed=11).drop(columns=["y"])
    shifted = make_frame(300, seed=12, shift=2.0).drop(columns=["y"])
    ok = drift_report(stats, same, model.predict(same))
    bad = drift_report(stats, shifted, model.predict(shifted))
    assert ok["enough_data"] and not ok["drift"], ok
    assert bad["drift"] and set(bad["drifted_features"]) >= {"x", "color"}
    assert bad["features"]["x"]["ks_pvalue"] < 1e-6 and bad["features"]["x"]["psi"] > 0.5
    assert not bad["features"]["flag"]["drift"]
    assert bad["predictions"]["y"]["psi"] > ok["predictions"]["y"]["psi"]
    few = drift_report(stats, shifted.head(10), model.predict(shifted.head(10)))
    assert not few["enough_data"] and not few["drift"]
    assert psi([0.5, 0.5], [0.5, 0.5]) == 0.0


def test_sample_store_rate_masking_and_append_only(tmp_path: Path) -> None:
    store = SampleStore(tmp_path / "s.sqlite", rate=0.5, seed=0)
    inputs = pd.DataFrame({"note": [f"write to a{i}@b.com" for i in range(200)], "x": range(200)})
    outputs = pd.DataFrame({"y_prediction": ["1"] * 200})
    kept = store.record("m", "1", inputs, outputs)
    assert 70 < kept < 130 and store.count("m") == kept
    got_in, got_out = store.load("m", "1")
    assert set(got_in["note"]) == {"write to <email>"} and len(got_out) == kept
    with pytest.raises(sqlite3.DatabaseError, match="append-only"):
        store._db.execute("DELETE FROM samples")
    store.close()


def test_served_samples_monitor_cli_and_gauges(run_dir: Path, tmp_path: Path) -> None:
    reg = ModelStore(tmp_path / "reg")
    reg.push(run_dir, "titanic")
    app = create_app(registry=reg.root, settings=ServeSettings(sample_rate=1.0, drift_interval_s=0))
    shifted = make_frame(120, seed=5, shift=2.5).drop(columns=["y"])
    body = [{"x": float(r.x), "color": r.color, "flag": r.flag} for r in shifted.itertuples()]
    body[0]["color"] = "call me at 555-123-4567"

    async def go():
        async with client_for(app) as c:
            for start in range(0, len(body), 20):
                assert (await c.post("/v1/models/titanic/predict", json={"rows": body[start:start + 20]})).status_code == 200
            await app.state.kiln.update_drift()
            return (await c.get("/metrics")).text

    metrics = run(go())
    assert 'kiln_drift_detected{model="titanic",version="1"} 1.0' in metrics
    assert 'kiln_drift_psi{feature="x",model="titanic",version="1"}' in metrics
    assert 'kiln_drift_sample_rows{model="titanic",version="1"} 120.0' in metrics
    db = sqlite3.connect(reg.root / "monitoring.sqlite")
    stored = [json.loads(r[0]) for r in db.execute("SELECT inputs FROM samples ORDER BY id")]
    assert len(stored) == 120 and stored[0]["color"] == "call me at <phone>"
    html = tmp_path / "drift.html"
    result = CliRunner().invoke(cli_app, ["monitor", "titanic", "-r", str(reg.root), "-o", str(html), "--fail-on-drift"])
    assert result.exit_code == 1, result.output
    assert "DRIFT" in result.output and "PSI" in result.output
    page = html.read_text()
    assert "Drift detected" in page and "<script" not in page and "http" not in page
