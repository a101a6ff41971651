"""Hostile requests and server options (issue 13): 4xx, never a 500, and the keep-alive connection
survives; a stalled body times out; a broken promoted version is logged once and not shown as served;
a deleted key file revokes keys; the OpenAPI spec lists the errors."""

from __future__ import annotations

import http.client
import json
import logging
import shutil
import socket
import time
from pathlib import Path

import pytest
import torch
from _helpers import client_for, rows, run, running_server
from cli_helpers import one_line_error, run_cli

import kiln
from kiln.errors import KilnError
from kiln.io import load_tensors, save_tensors
from kiln.serve.app import create_app
from kiln.serve.auth import KeyStore, add_key
from kiln.serve.settings import ServeSettings
from kiln.serve.versions import ModelStore

GOOD = json.dumps({"rows": rows(1)}).encode()
HOSTILE = [
    ("tab", b'{"rows": [{"x": 1, "color": "\\ud800", "flag": "yes"}]}', "unpaired surrogate"),
    ("gpt", b'{"prompt": "ab\\udc00", "max_new_tokens": 2, "stream": false}', "unpaired surrogate"),
    ("tab", b'{"rows": ' + b"[" * 400_000 + b"]" * 400_000 + b"}", "nested too deeply"),
    ("gpt", b'{"prompt": "the", "max_new_tokens": 2, "temperature": 1e999, "stream": false}', "temperature"),
    ("gpt", b'{"prompt": "the", "max_new_tokens": 2, "seed": ' + str(2**80).encode() + b', "stream": false}', "seed"),
    ("gpt", b'{"prompt": "the", "max_new_tokens": 2, "top_k": ' + str(2**80).encode() + b', "stream": false}', "top_k"),
]


def test_hostile_bodies_are_4xx_and_the_connection_survives(run_dir, lm_dir):
    app = create_app({"tab": run_dir, "gpt": lm_dir}, settings=ServeSettings(timeout_s=5))
    with running_server(app) as (url, _):
        conn = http.client.HTTPConnection("127.0.0.1", int(url.rsplit(":", 1)[1]), timeout=20)
        for model, body, fact in HOSTILE:
            task = "predict" if model == "tab" else "generate"
            conn.request("POST", f"/v1/models/{model}/{task}", body=body, headers={"content-type": "application/json"})
            answer = conn.getresponse()
            detail = json.loads(answer.read())["detail"]
            assert answer.status == 422 and fact in detail, (answer.status, detail)
            conn.request("POST", "/v1/models/tab/predict", body=GOOD, headers={"content-type": "application/json"})
            after = conn.getresponse()  # the same keep-alive connection
            assert after.status == 200
            after.read()


def test_a_client_stalled_mid_body_gets_408_within_the_timeout(run_dir):
    app = create_app({"tab": run_dir}, settings=ServeSettings(timeout_s=1.0))
    with running_server(app) as (url, _):
        with socket.create_connection(("127.0.0.1", int(url.rsplit(":", 1)[1])), timeout=10) as sock:
            sock.sendall(b"POST /v1/models/tab/predict HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                         b"Content-Length: 100\r\n\r\n{\"rows\"")
            start = time.monotonic()
            head = sock.recv(100)
        assert head.startswith(b"HTTP/1.1 408") and time.monotonic() - start < 8


def test_a_client_stalled_mid_headers_gets_408_and_others_are_served(run_dir):
    app = create_app({"tab": run_dir}, settings=ServeSettings(timeout_s=1.0))
    with running_server(app) as (url, _):
        port = int(url.rsplit(":", 1)[1])
        with socket.create_connection(("127.0.0.1", port), timeout=10) as slow:
            slow.sendall(b"POST /v1/models/tab/predict HTTP/1.1\r\nHost: x\r\nContent-Ty")  # and then nothing
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
            conn.request("POST", "/v1/models/tab/predict", body=GOOD, headers={"content-type": "application/json"})
            answer = conn.getresponse()
            assert answer.status == 200  # the stalled client holds nobody up
            answer.read()
            time.sleep(1.5)  # past the deadline: an idle keep-alive connection is closed too
            with pytest.raises((http.client.RemoteDisconnected, ConnectionError)):  # closed without a spurious 408
                conn.request("POST", "/v1/models/tab/predict", body=GOOD, headers={"content-type": "application/json"})
                conn.getresponse()
            start = time.monotonic()
            head = slow.recv(100)
        assert head.startswith(b"HTTP/1.1 408") and time.monotonic() - start < 5


@pytest.mark.parametrize(("flag", "value", "fact"), [("--port", "70000", "--port"), ("--max-body-bytes", "-1", "--max-body-bytes"),
                                                     ("--poll-s", "0", "--poll-s"), ("--workers", "0", "--workers")])
def test_serve_flags_out_of_range(capsys, monkeypatch, run_dir, flag, value, fact):
    one_line_error(run_cli(capsys, monkeypatch, "serve", run_dir, flag, value), fact)


def broken_copy(source: Path, target: Path, how: str) -> Path:
    shutil.copytree(kiln.artifact.model_dir(source), target)
    if how == "nan":
        weights = load_tensors(target / "weights.safetensors")
        first = next(k for k, v in weights.items() if v.is_floating_point())
        weights[first] = torch.full_like(weights[first], float("nan"))
        save_tensors(target / "weights.safetensors", weights)
    elif how == "format":
        meta = json.loads((target / "model.json").read_text())
        (target / "model.json").write_text(json.dumps({**meta, "format_version": 99}))
    else:
        (target / "weights.safetensors").write_bytes(b"\x10\x00\x00\x00\x00\x00\x00\x00{not json at all")
    return target


@pytest.mark.parametrize(("how", "fact"), [("nan", "NaN or infinite"), ("format", "format_version 99"), ("truncated", "weights.safetensors")])
def test_broken_model_files_are_one_line(run_dir, tmp_path, capsys, monkeypatch, how, fact):
    model = broken_copy(run_dir, tmp_path / "m", how)
    with pytest.raises(KilnError, match=fact):
        kiln.load(model)
    one_line_error(run_cli(capsys, monkeypatch, "predict", model, tmp_path / "x.csv"), fact)


def test_a_broken_promoted_version_is_logged_once_and_never_shown_as_served(run_dir, tmp_path, caplog):
    store = ModelStore(tmp_path / "reg")
    store.push(run_dir, "tab")
    bad = store.push(broken_copy(run_dir, tmp_path / "bad", "nan"), "tab", promote=True)
    store.promote("tab", 1)  # serve v1 first, then promote the broken v2 while serving
    app = create_app(registry=store.root, settings=ServeSettings(poll_s=0.05))

    async def scenario() -> None:
        async with client_for(app) as client:
            state = app.state.kiln
            store.promote("tab", bad.version)
            with caplog.at_level(logging.ERROR, logger="kiln.serve"):
                for _ in range(3):
                    await state.sync_store()
            answer = await client.post("/v1/models/tab/predict", json={"rows": rows(1)})
            assert answer.status_code == 200 and answer.json()["version"] == "1"

    run(scenario())
    logged = [r.getMessage() for r in caplog.records if "cannot be loaded" in r.getMessage()]
    assert len(logged) == 1 and "NaN" in logged[0] and "still serving version 1" in logged[0]
    listed = {v.version: v for v in store.versions("tab")}
    assert listed[bad.version].promoted and "NaN" in (listed[bad.version].load_error or "")


def test_deleting_the_key_file_revokes_every_key(tmp_path, monkeypatch):
    path = tmp_path / "keys.json"
    key = add_key(path, "team", ["*"])
    store = KeyStore(path)
    monkeypatch.setattr(KeyStore, "MISSING_GRACE_S", 0.0)
    headers = {"authorization": f"Bearer {key}"}
    assert store.authorize(headers, "tab").name == "team"
    path.unlink()
    with pytest.raises(Exception, match="invalid API key"):
        store.authorize(headers, "tab")


def test_openapi_lists_the_errors_and_metrics_as_text(run_dir):
    async def scenario() -> dict:
        async with client_for(create_app({"tab": run_dir})) as client:
            return (await client.get("/openapi.json")).json()

    spec = run(scenario())
    predict = spec["paths"]["/v1/models/{name}/predict"]["post"]["responses"]
    assert {"404", "408", "413", "422", "429", "504"} <= set(predict)
    assert list(spec["paths"]["/metrics"]["get"]["responses"]["200"]["content"]) == ["text/plain"]
