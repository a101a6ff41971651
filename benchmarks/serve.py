"""Serving throughput and latency: a real uvicorn server on loopback, batching on vs off.

Trains a small iris model (2 epochs), serves it with `kiln serve` (its own process) on a free 127.0.0.1 port, and for
each `--max-batch-size` runs `--concurrency` clients sending one-row requests for `--seconds`.
Reports requests/s, p50/p95/p99 latency and mean rows per predict call. Bounded and small by
default (the machine is shared). Usage::

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/serve.py [--seconds 3] [--concurrency 16]
        [--batch-sizes 1,32] [--output benchmarks/results/serve.json]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import socket
import statistics
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")
ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

FEATURES = ["sepal length (cm)", "sepal width (cm)", "petal length (cm)", "petal width (cm)"]


def train(out: Path) -> Path:
    import kiln

    config = {"data": {"train": "sklearn:iris"}, "input_features": [{"name": n, "type": "numeric"} for n in FEATURES],
              "output_features": [{"name": "target", "type": "category"}], "trainer": {"epochs": 2}}
    kiln.train(config, output=out / "iris", progress=False)
    return out / "iris"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


async def load(url: str, seconds: float, concurrency: int) -> list[float]:
    import httpx

    latencies: list[float] = []
    body = {"rows": [dict(zip(FEATURES, (5.1, 3.5, 1.4, 0.2)))]}
    deadline = time.perf_counter() + seconds
    async with httpx.AsyncClient(base_url=url, timeout=30, limits=httpx.Limits(max_connections=concurrency)) as client:
        async def worker() -> None:
            while time.perf_counter() < deadline:
                start = time.perf_counter()
                r = await client.post("/v1/models/iris/predict", json=body)
                r.raise_for_status()
                latencies.append(time.perf_counter() - start)

        await asyncio.gather(*(worker() for _ in range(concurrency)))
    return latencies


def _metric(text: str, name: str) -> float:
    return sum(float(line.rsplit(" ", 1)[1]) for line in text.splitlines() if line.startswith(name + "{"))


def bench(model_dir: Path, max_batch_size: int, seconds: float, concurrency: int) -> dict:
    """The server runs in its own process (`kiln serve`), so the load generator does not share its GIL."""
    import subprocess

    import httpx

    port = free_port()
    url = f"http://127.0.0.1:{port}"
    proc = subprocess.Popen([sys.executable, "-m", "kiln", "serve", str(model_dir), "--port", str(port),
                             "--max-batch-size", str(max_batch_size), "--max-wait-ms", "2"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            env={**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(ROOT / "src")})
    try:
        for _ in range(600):
            try:
                if httpx.get(f"{url}/ready", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            time.sleep(0.1)
        asyncio.run(load(url, 0.5, concurrency))  # warm-up
        before = httpx.get(f"{url}/metrics").text
        lat = asyncio.run(load(url, seconds, concurrency))
        after = httpx.get(f"{url}/metrics").text
    finally:
        proc.terminate()
        proc.wait(30)
    calls = _metric(after, "kiln_batch_size_rows_count") - _metric(before, "kiln_batch_size_rows_count")
    rows = _metric(after, "kiln_batch_size_rows_sum") - _metric(before, "kiln_batch_size_rows_sum")
    q = statistics.quantiles(lat, n=100)
    return {"max_batch_size": max_batch_size, "concurrency": concurrency, "requests": len(lat),
            "requests_per_s": len(lat) / seconds, "p50_ms": 1000 * q[49], "p95_ms": 1000 * q[94], "p99_ms": 1000 * q[98],
            "rows_per_predict": rows / max(calls, 1)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=3.0)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--batch-sizes", default="1,32")
    parser.add_argument("--output", type=Path, default=ROOT / "benchmarks" / "results" / "serve.json")
    args = parser.parse_args()
    import torch

    torch.set_num_threads(1)
    with tempfile.TemporaryDirectory() as tmp:
        model_dir = train(Path(tmp))
        results = [bench(model_dir, int(b), args.seconds, args.concurrency) for b in args.batch_sizes.split(",")]
    for r in results:
        print(f"max_batch_size={r['max_batch_size']:>3}  {r['requests_per_s']:7.1f} req/s  p50 {r['p50_ms']:6.1f} ms  "
              f"p95 {r['p95_ms']:6.1f} ms  p99 {r['p99_ms']:6.1f} ms  rows/predict {r['rows_per_predict']:.1f}")
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps({"cpu_count": os.cpu_count(), "results": results}, indent=2) + "\n")
    print(f"results written to {args.output}")


if __name__ == "__main__":
    main()
