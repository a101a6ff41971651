"""The HTTP service: endpoints, validation errors, limits, timeouts, auth and micro-batching."""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path

import httpx
import pandas as pd
from _helpers import client_for, rows, run

import kiln
from kiln.serve.app import create_app
from kiln.serve.settings import ServeSettings
from kiln.serve.auth import add_key, hash_key


def test_endpoints_and_prediction_match_direct_predict(run_dir: Path) -> None:
    app = create_app([run_dir])
    name = run_dir.name
    body = rows(7)

    async def go():
        async with client_for(app) as c:
            health, ready = await c.get("/health"), await c.get("/ready")
            models = await c.get("/v1/models")
            pred = await c.post(f"/v1/models/{name}/predict", json={"rows": body})
            docs, spec = await c.get("/docs"), await c.get("/openapi.json")
            metrics = await c.get("/metrics")
            return health, ready, models, pred, docs, spec, metrics

    health, ready, models, pred, docs, spec, metrics = run(go())
    assert health.json() == {"status": "ok"}
    assert ready.status_code == 200 and ready.json()["models"] == {name: "1"}
    (info,) = models.json()["models"]
    assert info["name"] == name and info["version"] == "1"
    assert info["inputs"] == [{"name": "x", "type": "numeric"}, {"name": "color", "type": "category"}, {"name": "flag", "type": "binary"}]
    assert "test" in info["metrics"] and "accuracy" in info["metrics"]["test"]
    assert pred.status_code == 200, pred.text
    data = pred.json()
    assert data["model"] == name and data["version"] == "1" and len(data["predictions"]) == 7
    expected = kiln.load(run_dir).predict(pd.DataFrame(body))
    got = pd.DataFrame(data["predictions"])
    assert list(got.columns) == list(expected.columns)
    assert got["y_prediction"].astype(str).tolist() == expected["y_prediction"].astype(str).tolist()
    prob = [c for c in expected.columns if "probability" in c]
    assert (got[prob].to_numpy() - expected[prob].to_numpy()).__abs__().max() < 1e-6
    assert docs.status_code == 200 and "swagger" in docs.text.lower()
    assert "/v1/models/{name}/predict" in spec.json()["paths"]
    text = metrics.text
    assert f'kiln_requests_total{{code="200",model="{name}",version="1"}} 1.0' in text
    assert "kiln_request_latency_seconds_bucket" in text and "kiln_batch_size_rows_bucket" in text


def test_errors_404_413_422(run_dir: Path) -> None:
    app = create_app({"m": run_dir}, settings=ServeSettings(max_body_bytes=2000))

    async def go():
        async with client_for(app) as c:
            out = {
                "unknown": await c.post("/v1/models/nope/predict", json={"rows": rows(1)}),
                "big": await c.post("/v1/models/m/predict", json={"rows": rows(40)}),
                "missing": await c.post("/v1/models/m/predict", json={"rows": [{"x": 1.0, "color": "red"}]}),
                "type": await c.post("/v1/models/m/predict", json={"rows": [{"x": "abc", "color": "red", "flag": "yes"}]}),
                "not_json": await c.post("/v1/models/m/predict", content=b"{rows", headers={"content-type": "application/json"}),
                "no_rows": await c.post("/v1/models/m/predict", json={"data": []}),
                "empty": await c.post("/v1/models/m/predict", json={"rows": []}),
                "ok": await c.post("/v1/models/m/predict", json={"rows": [{"x": None, "color": "purple", "flag": "no", "extra": 1}]}),
            }

            async def chunks():  # no content-length: the streamed size is counted
                for _ in range(10):
                    yield b" " * 500

            out["chunked"] = await c.post("/v1/models/m/predict", content=chunks())
            out["metrics"] = await c.get("/metrics")
            return out

    r = run(go())
    assert r["unknown"].status_code == 404 and "nope" in r["unknown"].json()["detail"]
    assert r["big"].status_code == 413 and r["chunked"].status_code == 413
    assert r["missing"].status_code == 422 and r["missing"].json()["field"] == "rows[0].flag"
    assert "missing input column 'flag'" in r["missing"].json()["detail"]
    assert r["type"].status_code == 422 and r["type"].json()["field"] == "rows[0].x"
    assert "number" in r["type"].json()["detail"]
    assert r["not_json"].status_code == 422 and r["not_json"].json()["field"] == "body"
    assert r["no_rows"].status_code == 422 and r["no_rows"].json()["field"] == "rows"
    assert r["empty"].status_code == 422
    assert r["ok"].status_code == 200, r["ok"].text  # null numeric and an unseen category are fine
    assert 'kiln_request_errors_total{code="422",model="m",version="1"} 5.0' in r["metrics"].text


def test_timeout_504_and_server_keeps_working(run_dir: Path) -> None:
    model = kiln.load(run_dir)
    fast = model.predict
    slow = {"on": True}

    def predict(frame):
        if slow["on"]:
            time.sleep(0.5)
        return fast(frame)

    model.predict = predict  # type: ignore[method-assign]
    app = create_app({"m": model}, settings=ServeSettings(timeout_s=0.1))

    async def go():
        async with client_for(app) as c:
            first = await c.post("/v1/models/m/predict", json={"rows": rows(2)})
            slow["on"] = False
            await asyncio.sleep(0.6)
            second = await c.post("/v1/models/m/predict", json={"rows": rows(2)})
            return first, second

    first, second = run(go())
    assert first.status_code == 504 and "0.1 s" in first.json()["detail"]
    assert second.status_code == 200


def test_api_keys_401_403(run_dir: Path, tmp_path: Path) -> None:
    keys = tmp_path / "keys.json"
    key_a = add_key(keys, "team-a", ["a"])
    key_all = add_key(keys, "ops", ["*"])
    stored = json.loads(keys.read_text())
    assert key_a not in keys.read_text() and stored["keys"][0]["sha256"] == hash_key(key_a)
    app = create_app({"a": run_dir, "b": run_dir}, settings=ServeSettings(api_keys=keys))
    body = {"rows": rows(1)}

    async def go():
        async with client_for(app) as c:
            return {
                "none": await c.post("/v1/models/a/predict", json=body),
                "wrong": await c.post("/v1/models/a/predict", json=body, headers={"Authorization": "Bearer nope"}),
                "bearer": await c.post("/v1/models/a/predict", json=body, headers={"Authorization": f"Bearer {key_a}"}),
                "header": await c.post("/v1/models/a/predict", json=body, headers={"X-API-Key": key_a}),
                "forbidden": await c.post("/v1/models/b/predict", json=body, headers={"X-API-Key": key_a}),
                "all": await c.post("/v1/models/b/predict", json=body, headers={"X-API-Key": key_all}),
                "list_a": await c.get("/v1/models", headers={"X-API-Key": key_a}),
                "list_none": await c.get("/v1/models"),
                "health": await c.get("/health"),
            }

    r = run(go())
    assert r["none"].status_code == 401 and r["none"].headers["www-authenticate"] == "Bearer"
    assert r["wrong"].status_code == 401
    assert r["bearer"].status_code == 200 and r["header"].status_code == 200
    assert r["forbidden"].status_code == 403 and "team-a" in r["forbidden"].json()["detail"]
    assert r["all"].status_code == 200
    assert [m["name"] for m in r["list_a"].json()["models"]] == ["a"]
    assert r["list_none"].status_code == 401 and r["health"].status_code == 200


def test_keys_add_cli(tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from kiln.cli import app

    path = tmp_path / "keys.yaml"
    result = CliRunner().invoke(app, ["keys", "add", "team-a", "--models", "a,b", "--file", str(path)])
    assert result.exit_code == 0, result.output
    key = result.output.strip().splitlines()[0]
    assert key.startswith("kiln_") and key not in path.read_text()
    import yaml

    (entry,) = yaml.safe_load(path.read_text())["keys"]
    assert entry == {"name": "team-a", "sha256": hash_key(key), "models": ["a", "b"]}


def test_batching_gives_each_caller_its_own_rows(run_dir: Path) -> None:
    model = kiln.load(run_dir)
    app = create_app({"m": model}, settings=ServeSettings(max_batch_size=16, max_wait_ms=20))
    bodies = [rows(1 + i % 3, seed=100 + i) for i in range(50)]

    async def go():
        async with client_for(app) as c:
            return await asyncio.gather(*(c.post("/v1/models/m/predict", json={"rows": b}) for b in bodies))

    answers = run(go())
    for body, answer in zip(bodies, answers):
        assert answer.status_code == 200, answer.text
        expected = model.predict(pd.DataFrame(body))
        got = pd.DataFrame(answer.json()["predictions"])
        assert len(got) == len(body)
        assert abs(got["y_probability_1"].to_numpy() - expected["y_probability_1"].to_numpy()).max() < 1e-6
    batches = app.state.kiln.models["m"].batcher.batches
    assert batches < 50  # requests were combined
    assert batches >= sum(len(b) for b in bodies) / 16  # and no batch went over 16 rows


def test_batching_off(run_dir: Path) -> None:
    app = create_app({"m": run_dir}, settings=ServeSettings(max_batch_size=1))

    async def go():
        async with client_for(app) as c:
            return await asyncio.gather(*(c.post("/v1/models/m/predict", json={"rows": rows(1, seed=i)}) for i in range(10)))

    assert all(r.status_code == 200 for r in run(go()))
    assert app.state.kiln.models["m"].batcher.batches == 10


def test_graceful_shutdown_drains_in_flight(run_dir: Path) -> None:
    """What SIGTERM does in uvicorn (should_exit): requests already in flight still get their answer."""
    from _helpers import running_server

    model = kiln.load(run_dir)
    fast = model.predict

    def predict(frame):
        time.sleep(0.3)
        return fast(frame)

    model.predict = predict  # type: ignore[method-assign]
    app = create_app({"m": model}, settings=ServeSettings(max_batch_size=4, max_wait_ms=1))
    with running_server(app) as (url, server):

        async def go():
            async with httpx.AsyncClient(base_url=url, timeout=10) as c:
                tasks = [asyncio.create_task(c.post("/v1/models/m/predict", json={"rows": rows(1, seed=i)})) for i in range(8)]
                await asyncio.sleep(0.15)
                server.should_exit = True
                return await asyncio.gather(*tasks)

        answers = run(go())
    assert [a.status_code for a in answers] == [200] * 8
    assert not app.state.kiln.models["m"].batcher.running


def test_dashboard_is_self_contained(run_dir: Path, tmp_path: Path) -> None:
    import re
    import shutil
    import subprocess

    app = create_app({"m": run_dir})

    async def go():
        async with client_for(app) as c:
            return await c.get("/")

    page = run(go())
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    assert "kiln dashboard" in page.text
    assert not re.search(r"(src|href)=\"(https?:)?//", page.text)  # no CDN, no external assets
    assert "http://" not in page.text and "https://" not in page.text
    for path in re.findall(r'fetch\("([^"]+)"', page.text):
        assert path in ("ready", "v1/models", "metrics", "v1/runs", "v1/runs/", "v1/models/")
    node = shutil.which("node")
    if node:  # a syntax check of the page's script (test_dashboard_browser.py runs it in chromium)
        script = tmp_path / "dashboard.js"
        script.write_text(page.text.split("<script>")[1].split("</script>")[0])
        check = subprocess.run([node, "--check", str(script)], capture_output=True, text=True, timeout=30)
        assert check.returncode == 0, check.stderr
