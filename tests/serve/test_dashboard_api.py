"""What the dashboard reads: /v1/runs (runs folder), drift status and example rows in /v1/models; the
per-batch request helpers (validate_rows, build_frame, frame_to_records)."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from _helpers import client_for, run

from kiln.errors import KilnError
from kiln.serve.app import create_app
from kiln.serve.settings import ServeSettings
from kiln.serve.auth import add_key
from kiln.serve.schema import RequestError, build_frame, frame_to_records, rows_to_frame, validate_rows


def test_runs_endpoints(run_dirs: dict[str, Path]) -> None:
    run_a, run_b = run_dirs["a"], run_dirs["b"]
    root = run_a.parent
    app = create_app({"m": run_a}, settings=ServeSettings(runs_dir=root))

    async def go():
        async with client_for(app) as c:
            names = ["", run_a.name, "train.csv", "nope", "..", ".hidden"]
            return await c.get("/v1/runs"), {n: await c.get(f"/v1/runs/{n}") for n in names[1:]}

    listing, detail = run(go())
    assert listing.status_code == 200
    data = listing.json()
    assert data["folder"] == str(root)
    assert sorted(r["name"] for r in data["runs"]) == sorted([run_a.name, run_b.name])  # train.csv is no run
    first = next(r for r in data["runs"] if r["name"] == run_a.name)
    assert first["model"] == "mlp" and first["epochs"] == 2 and first["servable"]
    assert 0 <= first["metrics"]["test"]["accuracy"] <= 1 and "per_class" not in first["metrics"]["test"]

    one = detail[run_a.name].json()
    history = one["history"]
    assert history["epoch"] == [1.0, 2.0] and len(history["train_loss"]) == 2 and len(history["validation_loss"]) == 2
    (cm,) = one["confusion"]
    assert cm["split"] == "test" and cm["classes"] == ["0", "1"]
    assert np.array(cm["matrix"]).shape == (2, 2) and sum(map(sum, cm["matrix"])) > 0
    for name in ("train.csv", "nope", "..", ".hidden"):
        assert detail[name].status_code == 404, name


def test_runs_without_folder_and_with_keys(run_dir: Path, tmp_path: Path) -> None:
    keys = tmp_path / "keys.json"
    key = add_key(keys, "team-a", ["other"])  # any valid key may read runs, whatever models it may call

    async def go(app, **headers):
        async with client_for(app) as c:
            return await c.get("/v1/runs", headers=headers), await c.get(f"/v1/runs/{run_dir.name}", headers=headers)

    listing, detail = run(go(create_app({"m": run_dir})))
    assert listing.json() == {"folder": None, "runs": []} and detail.status_code == 404
    assert "--runs" in detail.json()["detail"]

    app = create_app({"m": run_dir}, settings=ServeSettings(api_keys=keys, runs_dir=run_dir.parent))
    denied, denied_detail = run(go(app))
    assert denied.status_code == 401 and denied_detail.status_code == 401
    listing, detail = run(go(app, **{"X-API-Key": key}))
    assert listing.status_code == 200 and detail.status_code == 200


def test_models_list_drift_status_and_example(run_dir: Path, tmp_path: Path) -> None:
    async def models(app):
        async with client_for(app) as c:
            return (await c.get("/v1/models")).json()["models"][0]

    plain = run(models(create_app({"m": run_dir})))
    assert plain["drift"] == {"status": "not monitored"}
    example = plain["example"]
    assert isinstance(example["x"], float) and example["color"] in {"red", "green", "blue"} and example["flag"] in {"yes", "no"}

    settings = ServeSettings(sample_rate=1.0, sample_db=tmp_path / "s.sqlite", drift_interval_s=3600)
    monitored = run(models(create_app({"m": run_dir}, settings=settings)))
    assert monitored["drift"]["status"] in ("waiting for samples", "too few samples", "ok", "drift")


def test_serve_cli_runs_folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from kiln.serve.cli import _runs_folder

    monkeypatch.chdir(tmp_path)
    assert _runs_folder(None) is None  # no ./runs here
    (tmp_path / "runs").mkdir()
    assert _runs_folder(None) == (tmp_path / "runs").resolve()
    with pytest.raises(KilnError, match="not a folder"):
        _runs_folder(tmp_path / "missing")


def test_request_helpers() -> None:
    features = [{"name": "age", "type": "numeric"}, {"name": "sex", "type": "binary"}, {"name": "city", "type": "category"}]
    rows = [{"age": 3, "sex": "m", "city": 2, "extra": 1}, {"age": None, "sex": None, "city": "x"}]
    assert validate_rows({"rows": rows}, features) is rows
    frame = build_frame(rows, features)
    assert list(frame.columns) == ["age", "sex", "city"] and frame["age"].dtype == "float64"
    assert frame["age"].iloc[0] == 3.0 and math.isnan(frame["age"].iloc[1])
    pd.testing.assert_frame_equal(frame, rows_to_frame({"rows": rows}, features))
    for bad, where in (({"rows": [{"age": float("inf"), "sex": "m", "city": 1}]}, "rows[0].age"),
                       ({"rows": [{"age": 10**400, "sex": "m", "city": 1}]}, "rows[0].age"),
                       ({"rows": [{"age": True, "sex": "m", "city": 1}]}, "rows[0].age"),
                       ({"rows": [{"age": 1, "sex": "m"}]}, "rows[0].city")):
        with pytest.raises(RequestError) as info:
            validate_rows(bad, features)
        assert info.value.field == where

    out = pd.DataFrame({"p": np.array(["a", "b"], dtype=object), "q": [0.5, np.nan], "n": np.array([1, 2], dtype="int64")})
    records = frame_to_records(out)
    assert records == [{"p": "a", "q": 0.5, "n": 1}, {"p": "b", "q": None, "n": 2}]
    assert all(type(r["n"]) is int for r in records)
