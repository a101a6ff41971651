"""Model registry: versions, promote/rollback, concurrent pushes, hot swaps under load, `kiln serve` end to end."""

from __future__ import annotations

import asyncio
import multiprocessing
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
from _helpers import client_for, free_port, rows, run
from typer.testing import CliRunner

from kiln.cli import app as cli_app
from kiln.errors import KilnError
from kiln.serve.app import create_app
from kiln.serve.settings import ServeSettings
from kiln.serve.versions import ModelStore


def test_push_promote_rollback(run_dirs: dict[str, Path], tmp_path: Path) -> None:
    reg = ModelStore(tmp_path / "reg")
    v1 = reg.push(run_dirs["a"], "titanic")
    assert (v1.version, v1.promoted) == (1, True)  # the first version is promoted
    assert (v1.path / "model.json").is_file() and (v1.path / "metrics.json").is_file()
    v2 = reg.push(run_dirs["b"] / "model", "titanic")
    assert (v2.version, v2.promoted) == (2, False)
    assert reg.promoted() == {"titanic": 1}
    reg.promote("titanic", 2)
    assert reg.promoted() == {"titanic": 2}
    reg.push(run_dirs["a"], "titanic", promote=True)
    assert reg.promoted() == {"titanic": 3}
    assert reg.rollback("titanic").version == 2
    assert reg.rollback("titanic").version == 1
    with pytest.raises(KilnError, match="only version"):
        reg.rollback("titanic")
    with pytest.raises(KilnError, match="no version 9"):
        reg.promote("titanic", 9)
    with pytest.raises(KilnError, match="did you mean 'titanic'"):
        reg.get("titanc")
    with pytest.raises(KilnError, match="invalid model name"):
        reg.push(run_dirs["a"], "../evil")
    assert [v.version for v in reg.versions("titanic")] == [1, 2, 3]
    assert not [p for p in (tmp_path / "reg" / "models" / "titanic").iterdir() if p.name.startswith(".")]


def _push_many(root: str, run_dir: str, n: int, queue) -> None:
    reg = ModelStore(root)
    queue.put([reg.push(run_dir, "m").version for _ in range(n)])


def test_concurrent_pushes_get_distinct_versions(run_dir: Path, tmp_path: Path) -> None:
    ctx = multiprocessing.get_context("fork")
    queue = ctx.Queue()
    ModelStore(tmp_path / "reg")  # create the index once
    procs = [ctx.Process(target=_push_many, args=(str(tmp_path / "reg"), str(run_dir), 3, queue)) for _ in range(4)]
    for p in procs:
        p.start()
    got = sorted(v for _ in procs for v in queue.get(timeout=60))
    for p in procs:
        p.join(30)
        assert p.exitcode == 0
    assert got == list(range(1, 13))
    reg = ModelStore(tmp_path / "reg")
    assert [v.version for v in reg.versions("m")] == got
    assert all((v.path / "weights.safetensors").is_file() for v in reg.versions("m"))


def test_registry_cli(run_dirs: dict[str, Path], tmp_path: Path) -> None:
    runner = CliRunner()
    reg = str(tmp_path / "reg")
    for run_dir in run_dirs.values():
        result = runner.invoke(cli_app, ["registry", "push", str(run_dir), "--name", "titanic", "--registry", reg])
        assert result.exit_code == 0, result.output
    assert "version 1 (promoted)" in runner.invoke(cli_app, ["registry", "push", str(run_dirs["a"]), "--name", "other", "-r", reg]).output
    assert runner.invoke(cli_app, ["registry", "promote", "titanic", "2", "-r", reg]).exit_code == 0
    listing = runner.invoke(cli_app, ["registry", "list", "-r", reg]).output
    assert "titanic" in listing and "other" in listing and "*" in listing
    assert "version 1 is promoted" in runner.invoke(cli_app, ["registry", "rollback", "titanic", "-r", reg]).output
    bad = subprocess.run([sys.executable, "-m", "kiln", "registry", "promote", "titanic", "7", "-r", reg],
                         capture_output=True, text=True, timeout=60, env={**os.environ, "OMP_NUM_THREADS": "1"})
    assert bad.returncode == 2 and "no version 7" in bad.stderr and "Traceback" not in bad.stderr


def test_hot_promote_and_rollback_under_load_lose_no_request(run_dirs: dict[str, Path], tmp_path: Path) -> None:
    reg = ModelStore(tmp_path / "reg")
    reg.push(run_dirs["a"], "titanic")
    reg.push(run_dirs["b"], "titanic")
    app = create_app(registry=reg.root, settings=ServeSettings(poll_s=0.05, max_wait_ms=2))
    body = {"rows": rows(3)}

    async def go():
        async with client_for(app) as c:
            stop = asyncio.Event()
            answers: list[httpx.Response] = []

            async def load():
                while not stop.is_set():
                    answers.append(await c.post("/v1/models/titanic/predict", json=body))

            async def wait_for(version: str) -> None:
                for _ in range(200):
                    if app.state.kiln.models["titanic"].version == version:
                        return
                    await asyncio.sleep(0.02)
                raise AssertionError(f"version {version} was never served")

            clients = [asyncio.create_task(load()) for _ in range(6)]
            await asyncio.sleep(0.2)
            await asyncio.to_thread(reg.promote, "titanic", 2)
            await wait_for("2")
            await asyncio.sleep(0.2)
            await asyncio.to_thread(reg.rollback, "titanic")
            await wait_for("1")
            await asyncio.sleep(0.2)
            stop.set()
            await asyncio.gather(*clients)
            return answers, (await c.get("/v1/models")).json()

    answers, listing = run(go())
    assert len(answers) > 20
    assert [a.status_code for a in answers if a.status_code != 200] == []
    versions = [a.json()["version"] for a in answers]
    assert "1" in versions and "2" in versions and versions[-1] == "1"
    # each version's answer is that version's model
    by_version = {v: a.json()["predictions"] for a in answers for v in [a.json()["version"]]}
    assert by_version["1"] != by_version["2"]
    assert listing["models"][0]["version"] == "1"


def test_kiln_serve_cli_end_to_end_and_sigterm(run_dirs: dict[str, Path], tmp_path: Path) -> None:
    reg = ModelStore(tmp_path / "reg")
    reg.push(run_dirs["a"], "titanic")
    port = free_port()
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.Popen([sys.executable, "-m", "kiln", "serve", "--registry", str(reg.root), "--port", str(port),
                             "--poll-s", "0.2"], env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 40
        while True:
            try:
                if httpx.get(f"{url}/ready", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert proc.poll() is None and time.monotonic() < deadline, proc.stdout.read() if proc.poll() is not None else "timeout"
            time.sleep(0.2)
        r = httpx.post(f"{url}/v1/models/titanic/predict", json={"rows": rows(2)}, timeout=10)
        assert r.status_code == 200 and r.json()["version"] == "1"
        reg.push(run_dirs["b"], "titanic", promote=True)
        for _ in range(100):
            if httpx.get(f"{url}/v1/models", timeout=5).json()["models"][0]["version"] == "2":
                break
            time.sleep(0.1)
        else:
            raise AssertionError("the server never picked up version 2")
        proc.send_signal(signal.SIGTERM)
        rc = proc.wait(20)
        log = proc.stdout.read()
        # uvicorn drains, runs the shutdown (batchers finish their queues), then re-raises SIGTERM
        assert rc in (0, -signal.SIGTERM), log
        assert "Application shutdown complete" in log and "Traceback" not in log
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def test_serve_cli_input_errors(tmp_path: Path) -> None:
    runner = CliRunner()
    r = runner.invoke(cli_app, ["serve", str(tmp_path / "missing")])
    assert isinstance(r.exception, KilnError) and "not a kiln model or run directory" in str(r.exception)
    r = runner.invoke(cli_app, ["serve", "--registry", str(tmp_path / "none")])
    assert isinstance(r.exception, KilnError) and "no model registry" in str(r.exception)
    r = runner.invoke(cli_app, ["serve", str(tmp_path), "--max-batch-size", "0"])
    assert isinstance(r.exception, KilnError) and "--max-batch-size" in str(r.exception)
