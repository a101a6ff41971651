"""Serving throughput and latency: a real `kiln serve` process on loopback, batching on vs off.

One server process serves two models, Titanic (tabular MLP with a text column) and SST-2 (LSTM
sentiment classifier). For each `--batch-sizes` value (1 = batching off: every request is its own
forward pass) the server is started afresh, and each model in turn gets `--concurrency` clients
sending one-row requests for `--seconds`, after `--warmup` seconds that are not counted. Reported
per model and setting: requests/s, p50/p95/p99 latency, errors (non-200 answers, dropped
connections, timeouts) and mean rows per predict call (from the server's own /metrics).

The load generator runs in its own process (a lean asyncio HTTP/1.1 keep-alive client over raw
sockets, about 0.1 ms of CPU per request), so it does not share the server's interpreter.

Models: `--titanic DIR` / `--sst2 DIR` (default `runs/titanic` and `runs/sst2_lstm`, made by
`kiln train examples/titanic.yaml --output runs/titanic` and the SST-2 LSTM example); when absent,
small stand-ins with the same architectures are trained first (Titanic: the example config;
SST-2: the LSTM example on 4,000 training sentences, 1 epoch) from `$KILN_DATA` (../shared/data).

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/serve.py [--seconds 30] [--concurrency 64]
        [--batch-sizes 1,64] [--max-wait-ms 2] [--models titanic,sst2] [--check]

Results go to `benchmarks/results/serve.json`. `--check` exits with status 1 unless, for every
model, batching on reaches 3x the requests/s of batching off with zero errors, and the Titanic p99
with batching on is under 100 ms.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")
ROOT = Path(__file__).resolve().parents[1]
DATA = Path(os.environ.get("KILN_DATA", ROOT.parent / "shared" / "data"))
TITANIC_INPUTS = ["Pclass", "Sex", "Age", "SibSp", "Parch", "Fare", "Embarked", "Name"]


# -- models -------------------------------------------------------------------------------------
def _train(config_file: Path, out: Path, edit) -> Path:
    import yaml

    import kiln

    config = yaml.safe_load(os.path.expandvars(config_file.read_text().replace("${KILN_DATA}", str(DATA))))
    edit(config)
    kiln.train(config, output=out, progress=False)
    return out


def _is_model(path: Path | None) -> bool:
    return path is not None and ((path / "model" / "model.json").is_file() or (path / "model.json").is_file())


def titanic_model(path: Path | None, tmp: Path) -> Path:
    if _is_model(path):
        return path
    print("training a Titanic model (examples/titanic.yaml) ...", flush=True)
    return _train(ROOT / "examples" / "titanic.yaml", tmp / "titanic", lambda c: None)


def sst2_model(path: Path | None, tmp: Path) -> Path:
    if _is_model(path):
        return path
    import random

    print("training a small SST-2 LSTM (examples/sst2_lstm.yaml on 4,000 sentences, 1 epoch) ...", flush=True)
    subset = tmp / "sst2-train.tsv"
    # split on "\n" only: some SST-2 lines hold a stray "\r" that kiln's TSV reader copes with
    header, *lines = [line for line in (DATA / "sst2" / "train.tsv").read_bytes().split(b"\n") if line]
    subset.write_bytes(b"\n".join([header, *random.Random(0).sample(lines, 4000)]) + b"\n")

    def edit(c: dict) -> None:
        c["data"]["train"] = str(subset)
        c["trainer"]["epochs"] = 1

    return _train(ROOT / "examples" / "sst2_lstm.yaml", tmp / "sst2", edit)


def request_rows(model: str, n: int = 256) -> list[dict]:
    """Distinct one-row bodies from the real data (the inputs only)."""
    import pandas as pd

    if model == "titanic":
        frame = pd.read_csv(DATA / "titanic" / "train.csv")[TITANIC_INPUTS].head(n)
        return [{k: (None if pd.isna(v) else (v.item() if hasattr(v, "item") else v)) for k, v in row.items()}
                for row in frame.to_dict("records")]
    lines = (DATA / "sst2" / "dev.tsv").read_text(encoding="utf-8").split("\n")[1 : n + 1]
    return [{"sentence": line.rsplit("\t", 1)[0].strip()} for line in lines if line.strip()]


# -- load generator (runs in a child process: `serve.py --client SPEC`) ---------------------------
def _request_bytes(port: int, path: str, body: dict) -> bytes:
    payload = json.dumps({"rows": [body]}).encode()
    head = (f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(payload)}\r\n\r\n").encode()
    return head + payload


async def _client(port: int, requests: list[bytes], offset: int, start_at: float, stop_at: float,
                  latencies: list[float], errors: dict[str, int]) -> None:
    i = offset
    reader = writer = None
    while time.perf_counter() < stop_at:
        try:
            if writer is None:
                reader, writer = await asyncio.open_connection("127.0.0.1", port)
            t0 = time.perf_counter()
            writer.write(requests[i % len(requests)])
            i += 1
            head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 30)
            length = 0
            for line in head.split(b"\r\n"):
                if line[:15].lower() == b"content-length:":
                    length = int(line[15:])
            if length:
                await reader.readexactly(length)
            t1 = time.perf_counter()
            status = int(head[9:12])
            if t0 >= start_at and t1 <= stop_at:
                if status == 200:
                    latencies.append(t1 - t0)
                else:
                    errors[str(status)] = errors.get(str(status), 0) + 1
            if head.lower().find(b"connection: close") >= 0:
                writer.close()
                reader = writer = None
        except (OSError, asyncio.IncompleteReadError, asyncio.LimitOverrunError, TimeoutError, ValueError) as exc:
            if time.perf_counter() < stop_at:
                errors[type(exc).__name__] = errors.get(type(exc).__name__, 0) + 1
            if writer is not None:
                writer.close()
            reader = writer = None
            await asyncio.sleep(0.01)
    if writer is not None:
        writer.close()


def client_main(spec: dict) -> None:
    rows = spec["rows"]
    requests = [_request_bytes(spec["port"], spec["path"], r) for r in rows]
    latencies: list[float] = []
    errors: dict[str, int] = {}

    async def go() -> None:
        now = time.perf_counter()
        start_at, stop_at = now + spec["warmup"], now + spec["warmup"] + spec["seconds"]
        await asyncio.gather(*(_client(spec["port"], requests, k * 7, start_at, stop_at, latencies, errors)
                               for k in range(spec["concurrency"])))

    cpu0 = time.process_time()
    asyncio.run(go())
    json.dump({"latencies": latencies, "errors": errors, "cpu_s": time.process_time() - cpu0}, sys.stdout)


# -- driver -------------------------------------------------------------------------------------
def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _get(port: int, path: str) -> tuple[int, str]:
    import http.client

    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
    try:
        conn.request("GET", path)
        r = conn.getresponse()
        return r.status, r.read().decode()
    finally:
        conn.close()


def _metric(text: str, name: str, model: str) -> float:
    return sum(float(line.rsplit(" ", 1)[1]) for line in text.splitlines()
               if line.startswith(name + "{") and f'model="{model}"' in line)


def _cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def bench(models: dict[str, Path], names: list[str], max_batch_size: int, args: argparse.Namespace) -> list[dict]:
    port = free_port()
    cmd = [sys.executable, "-m", "kiln", "serve", *(str(models[n]) for n in names), "--port", str(port),
           "--max-batch-size", str(max_batch_size), "--max-wait-ms", str(args.max_wait_ms), "--no-access-log"]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(ROOT / "src")}
    server = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env)
    results = []
    try:
        deadline = time.monotonic() + 120
        while True:
            try:
                if _get(port, "/ready")[0] == 200:
                    break
            except OSError:
                pass
            if server.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"server did not start: {server.stderr.read().decode()[-2000:]}")
            time.sleep(0.2)
        served = {m["name"]: m for m in json.loads(_get(port, "/v1/models")[1])["models"]}
        for name in names:
            model_name = _name_for(models[name])
            assert model_name in served, (model_name, list(served))
            spec = {"port": port, "path": f"/v1/models/{model_name}/predict", "rows": request_rows(name),
                    "concurrency": args.concurrency, "seconds": args.seconds, "warmup": args.warmup}
            before = _get(port, "/metrics")[1]
            cpu_before = _cpu_seconds(server.pid)
            client = subprocess.run([sys.executable, __file__, "--client", json.dumps(spec)], capture_output=True,
                                    text=True, env=env, timeout=args.seconds + args.warmup + 120)
            if client.returncode != 0:
                raise RuntimeError(f"load generator failed: {client.stderr[-2000:]}")
            cpu_server = _cpu_seconds(server.pid) - cpu_before
            after = _get(port, "/metrics")[1]
            out = json.loads(client.stdout)
            lat = sorted(out["latencies"])
            q = statistics.quantiles(lat, n=100) if len(lat) > 1 else [float("nan")] * 99
            calls = _metric(after, "kiln_batch_size_rows_count", model_name) - _metric(before, "kiln_batch_size_rows_count", model_name)
            rows = _metric(after, "kiln_batch_size_rows_sum", model_name) - _metric(before, "kiln_batch_size_rows_sum", model_name)
            r = {"model": name, "max_batch_size": max_batch_size, "max_wait_ms": args.max_wait_ms,
                 "concurrency": args.concurrency, "seconds": args.seconds, "requests": len(lat),
                 "requests_per_s": len(lat) / args.seconds, "p50_ms": 1000 * q[49], "p95_ms": 1000 * q[94],
                 "p99_ms": 1000 * q[98], "errors": sum(out["errors"].values()), "error_kinds": out["errors"],
                 "rows_per_predict": rows / max(calls, 1),
                 "server_cpu_s": cpu_server, "client_cpu_s": out["cpu_s"], "loadavg_after": os.getloadavg()[0]}
            results.append(r)
            print(_line(r), flush=True)
    finally:
        server.terminate()
        try:
            server.wait(30)
        except subprocess.TimeoutExpired:
            server.kill()
    return results


def _name_for(path: Path) -> str:
    path = path.resolve()
    return path.parent.name if path.name == "model" else path.name


def _line(r: dict) -> str:
    return (f"{r['model']:<8} max_batch_size={r['max_batch_size']:>3}  {r['requests_per_s']:7.1f} req/s  "
            f"p50 {r['p50_ms']:6.1f} ms  p95 {r['p95_ms']:6.1f} ms  p99 {r['p99_ms']:6.1f} ms  errors {r['errors']}  "
            f"rows/predict {r['rows_per_predict']:.1f}  cpu server {r['server_cpu_s']:.1f} s client {r['client_cpu_s']:.1f} s")


def check(results: list[dict]) -> list[str]:
    failures = []
    for model in sorted({r["model"] for r in results}):
        by = {r["max_batch_size"]: r for r in results if r["model"] == model}
        off, on = by.get(1), by.get(max(by))
        if off is None or on is None or on is off:
            continue
        ratio = on["requests_per_s"] / max(off["requests_per_s"], 1e-9)
        if ratio < 3:
            failures.append(f"{model}: batching on is {ratio:.2f}x batching off (target 3x)")
        if on["errors"] or off["errors"]:
            failures.append(f"{model}: {on['errors'] + off['errors']} errors")
        if model == "titanic" and not on["p99_ms"] < 100:
            failures.append(f"titanic: p99 {on['p99_ms']:.1f} ms with batching on (target < 100 ms)")
    return failures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=30.0, help="measured seconds per model and setting")
    parser.add_argument("--warmup", type=float, default=3.0, help="seconds of load before measuring")
    parser.add_argument("--concurrency", type=int, default=64)
    parser.add_argument("--batch-sizes", default="1,64", help="--max-batch-size values; 1 = batching off")
    parser.add_argument("--max-wait-ms", type=float, default=2.0)
    parser.add_argument("--models", default="titanic,sst2")
    parser.add_argument("--titanic", type=Path, default=ROOT / "runs" / "titanic")
    parser.add_argument("--sst2", type=Path, default=ROOT / "runs" / "sst2_lstm")
    parser.add_argument("--output", type=Path, default=ROOT / "benchmarks" / "results" / "serve.json")
    parser.add_argument("--check", action="store_true", help="exit 1 when a target is missed")
    parser.add_argument("--client", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.client:
        client_main(json.loads(args.client))
        return
    sys.path.insert(0, str(ROOT / "src"))
    names = [n for n in args.models.split(",") if n]
    load_start = os.getloadavg()[0]
    with tempfile.TemporaryDirectory() as tmp:
        models = {}
        if "titanic" in names:
            models["titanic"] = titanic_model(args.titanic, Path(tmp))
        if "sst2" in names:
            models["sst2"] = sst2_model(args.sst2, Path(tmp))
        results = [r for b in args.batch_sizes.split(",") for r in bench(models, names, int(b), args)]
        used = {n: str(p) for n, p in models.items()}
    print()
    for r in results:
        print(_line(r))
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps({"cpu_count": os.cpu_count(), "loadavg_start": load_start, "models": used,
                                       "command": " ".join(sys.argv), "results": results}, indent=2) + "\n")
    print(f"results written to {args.output}")
    failures = check(results)
    for f in failures:
        print("target missed:", f)
    if args.check and failures:
        sys.exit(1)


if __name__ == "__main__":
    main()
