"""Helpers shared by the serving tests (imported via the path conftest.py adds)."""

from __future__ import annotations

import asyncio
import socket
import threading
import time
from contextlib import asynccontextmanager, contextmanager
from pathlib import Path

import numpy as np
import pandas as pd


def make_frame(n: int = 200, seed: int = 0, shift: float = 0.0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    x = rng.normal(loc=shift, size=n)
    color = rng.choice(["red", "green", "blue"], size=n, p=[0.6, 0.2, 0.2] if shift else None)
    y = ((x + (color == "red") * 1.5 + rng.normal(scale=0.3, size=n)) > 0.5).astype(int)
    return pd.DataFrame({"x": x, "color": color, "flag": rng.choice(["yes", "no"], size=n), "y": y})


def config_for(path: Path) -> dict:
    return {
        "data": {"train": str(path), "split": {"validation": 0.2, "test": 0.2, "seed": 1}},
        "input_features": [{"name": "x", "type": "numeric"}, {"name": "color", "type": "category"},
                           {"name": "flag", "type": "binary"}],
        "output_features": [{"name": "y", "type": "binary"}],
        "model": {"type": "mlp", "hidden": [8]},
        "trainer": {"epochs": 2, "batch_size": 32, "learning_rate": 0.01},
    }


def rows(n: int = 5, seed: int = 3) -> list[dict]:
    frame = make_frame(n, seed=seed).drop(columns=["y"])
    return [{"x": float(r.x), "color": r.color, "flag": r.flag} for r in frame.itertuples()]


@asynccontextmanager
async def client_for(app):
    import httpx

    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://kiln.test") as client:
            yield client


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextmanager
def running_server(app, timeout: float = 20.0):
    """A real uvicorn server on a free loopback port, in a thread; yields (base_url, server)."""
    import uvicorn

    port = free_port()
    from kiln.serve.protocol import uvicorn_options

    options = uvicorn_options(app.state.kiln.settings.timeout_s) if hasattr(app.state, "kiln") else {}
    config = uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="on", **options)
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + timeout
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("uvicorn did not start")
        time.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{port}", server
    finally:
        server.should_exit = True
        thread.join(timeout)


def run(coro):
    return asyncio.run(coro)
