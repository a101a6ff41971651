"""Soak: mixed predict + generate load on a real `kiln serve` process (127.0.0.1 only) serving three
models, with faults injected, bounded in time and request count.

Phases (each `--seconds` long, at most `--max-requests` requests per client kind):
  quiet     steady predict load on `tab` alone: its quiet p99.
  mixed     predict on `tab` and `tab2`, generate on `gpt`, all at once.
  faults    the mixed load plus: a flood of long non-streamed generations on `gpt` (more than its
            queue holds: 429s), clients that stall mid-body (408 after --timeout-s), clients that
            drop a stream mid-way, malformed and hostile bodies (422), requests for unknown models (404).
            The misbehaving clients run in a process of their own (other machines in real life), at
            the same CPU priority as the server unless --fault-client-nice says otherwise.

Reported: requests served, errors by kind, p50/p99 per model and phase, CPU seconds per server
thread and per client process in each phase, and whether `tab`'s p99 under the faults stays within
2x its quiet value. A table on stdout, JSON in benchmarks/results/soak.json.

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/soak.py [--seconds 15] [--max-requests 5000]
        [--serve-args "--generate-nice 0 --busy-hold-s 0"] [--models DIR] [--fault-client-nice 0]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing
import os
import shlex
import socket
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

os.environ.setdefault("OMP_NUM_THREADS", "1")
ROOT = Path(__file__).resolve().parents[1]
HOST = "127.0.0.1"


def train_models(folder: Path) -> dict[str, Path]:
    """Two small tabular classifiers and a tiny character GPT (seconds each)."""
    import numpy as np
    import pandas as pd

    import kiln

    rng = np.random.default_rng(0)
    n = 400
    x = rng.normal(size=n)
    color = rng.choice(["red", "green", "blue"], size=n)
    frame = pd.DataFrame({"x": x, "color": color, "y": ((x + (color == "red")) > 0.5).astype(int)})
    frame.to_csv(folder / "t.csv", index=False)
    out = {}
    for name, hidden in (("tab", [16]), ("tab2", [32, 16])):
        kiln.train({"data": {"train": str(folder / "t.csv")},
                    "input_features": [{"name": "x", "type": "numeric"}, {"name": "color", "type": "category"}],
                    "output_features": [{"name": "y", "type": "binary"}], "model": {"type": "mlp", "hidden": hidden},
                    "trainer": {"epochs": 2}}, output=folder / name)
        out[name] = folder / name
    (folder / "text.txt").write_text("the cat sat on the mat. a dog ran to the park!\n" * 200)
    kiln.train({"task": "language_modeling", "data": {"train": str(folder / "text.txt")}, "tokenizer": {"type": "char"},
                "model": {"type": "gpt", "layers": 2, "heads": 2, "d_model": 32, "block_size": 64},
                "trainer": {"iterations": 30, "batch_size": 8, "eval_interval": 15, "eval_iters": 2}}, output=folder / "gpt")
    out["gpt"] = folder / "gpt"
    return out


def free_port() -> int:
    with socket.socket() as s:
        s.bind((HOST, 0))
        return s.getsockname()[1]


async def request(port: int, method: str, path: str, body: bytes | None, timeout: float) -> tuple[int | str, float]:
    """One HTTP/1.1 request on a fresh connection; (status or error kind, seconds)."""
    start = time.perf_counter()
    try:
        reader, writer = await asyncio.wait_for(asyncio.open_connection(HOST, port), timeout)
        head = f"{method} {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n"
        if body is not None:
            head += f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n"
        writer.write(head.encode() + b"\r\n" + (body or b""))
        await writer.drain()
        line = await asyncio.wait_for(reader.readline(), timeout)
        await asyncio.wait_for(reader.read(), timeout)
        writer.close()
        status: int | str = int(line.split()[1]) if line else "reset"
    except asyncio.TimeoutError:
        status = "client timeout"
    except (ConnectionError, OSError, IndexError, ValueError):
        status = "connection error"
    return status, time.perf_counter() - start


def predict_body() -> bytes:
    return json.dumps({"rows": [{"x": 0.3, "color": "red"}]}).encode()


class Recorder:
    def __init__(self) -> None:
        self.latency: dict[str, list[float]] = {}
        self.status: Counter[str] = Counter()

    def add(self, model: str, status: int | str, seconds: float) -> None:
        self.status[f"{model} {status}"] += 1
        if status == 200:
            self.latency.setdefault(model, []).append(seconds)


async def steady(port: int, rec: Recorder, model: str, task: str, body: bytes, until: float, cap: int, pause: float,
                 label: str | None = None) -> None:
    sent = 0
    while time.monotonic() < until and sent < cap:
        status, seconds = await request(port, "POST", f"/v1/models/{model}/{task}", body, 30)
        rec.add(label or model, status, seconds)
        sent += 1
        await asyncio.sleep(pause)


async def stalled(port: int, rec: Recorder, until: float) -> None:
    """Send half a body and wait: the server must answer 408 after its --timeout-s."""
    while time.monotonic() < until:
        start = time.perf_counter()
        try:
            reader, writer = await asyncio.open_connection(HOST, port)
            writer.write(b"POST /v1/models/tab/predict HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                         b"Content-Length: 1000\r\n\r\n{\"rows\": [")
            await writer.drain()
            line = await asyncio.wait_for(reader.readline(), 30)
            writer.close()
            rec.add("stalled-client", int(line.split()[1]) if line else "reset", time.perf_counter() - start)
        except (asyncio.TimeoutError, ConnectionError, OSError, IndexError, ValueError):
            rec.add("stalled-client", "no answer", time.perf_counter() - start)


async def dropped_stream(port: int, rec: Recorder, until: float) -> None:
    """Start a streamed generation, read a little, hang up."""
    body = json.dumps({"prompt": "the ", "max_new_tokens": 2048, "stream": True}).encode()
    while time.monotonic() < until:
        try:
            reader, writer = await asyncio.open_connection(HOST, port)
            writer.write(f"POST /v1/models/gpt/generate HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                         f"Content-Length: {len(body)}\r\n\r\n".encode() + body)
            await writer.drain()
            line = await asyncio.wait_for(reader.readline(), 30)
            await asyncio.wait_for(reader.read(200), 30)
            writer.close()
            rec.add("dropped-stream", int(line.split()[1]) if line else "reset", 0.0)
        except (asyncio.TimeoutError, ConnectionError, OSError, IndexError, ValueError):
            rec.add("dropped-stream", "error", 0.0)
        await asyncio.sleep(0.2)


HOSTILE = [b'{"rows": [{"x": "\\ud800", "color": "red"}]}', b'{"rows": ' + b"[" * 50_000 + b"]" * 50_000 + b"}",
           b'{"rows": [{"x": 1e999, "color": "red"}]}', b"not json", b'{"rows": [{"x": {"a": 1}, "color": "red"}]}']


async def hostile(port: int, rec: Recorder, until: float) -> None:
    i = 0
    while time.monotonic() < until:
        body = HOSTILE[i % len(HOSTILE)]
        path = "/v1/models/tab/predict" if i % 6 else "/v1/models/nope/predict"
        status, seconds = await request(port, "POST", path, body, 30)
        rec.add("hostile", status, seconds)
        i += 1
        await asyncio.sleep(0.05)


async def phase(port: int, name: str, seconds: float, cap: int) -> Recorder:
    """The well-behaved clients of a phase."""
    rec = Recorder()
    until = time.monotonic() + seconds
    gen = json.dumps({"prompt": "the cat ", "max_new_tokens": 32, "stream": False}).encode()
    jobs = [steady(port, rec, "tab", "predict", predict_body(), until, cap, 0.01) for _ in range(4)]
    if name in ("mixed", "faults"):
        jobs += [steady(port, rec, "tab2", "predict", predict_body(), until, cap, 0.01) for _ in range(2)]
        jobs += [steady(port, rec, "gpt", "generate", gen, until, cap, 0.05)]
    await asyncio.gather(*jobs)
    return rec


async def faults(port: int, seconds: float, cap: int) -> Recorder:
    """The misbehaving clients: a flood of long generations retrying at once on 429, stalled bodies,
    dropped streams, hostile bodies and unknown models."""
    rec = Recorder()
    until = time.monotonic() + seconds
    flood = json.dumps({"prompt": "the ", "max_new_tokens": 2048, "stream": False}).encode()
    jobs = [steady(port, rec, "gpt", "generate", flood, until, cap, 0.0, "gpt-flood") for _ in range(12)]
    jobs += [stalled(port, rec, until) for _ in range(4)]
    jobs += [dropped_stream(port, rec, until) for _ in range(2)]
    jobs += [hostile(port, rec, until)]
    await asyncio.gather(*jobs)
    return rec


def fault_process(port: int, seconds: float, cap: int, nice: int, out: Any) -> None:
    """The misbehaving clients in a process of their own (they are other machines in real life), at `nice`."""
    if nice:
        os.nice(nice)
    rec = asyncio.run(faults(port, seconds, cap))
    used = os.times()
    out.put((dict(rec.status), rec.latency, used.user + used.system))


def thread_cpu(pid: int) -> dict[str, float]:
    """CPU seconds (user + system) per OS thread name of process `pid`, summed over threads of one
    name (Linux /proc; empty elsewhere). kiln names its worker threads `kiln-<model>`."""
    out: dict[str, float] = {}
    tick = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100
    for task in Path(f"/proc/{pid}/task").glob("*"):
        try:
            comm = (task / "comm").read_text().strip()
            fields = (task / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        name = "event loop" if task.name == str(pid) else comm
        out[name] = out.get(name, 0.0) + (int(fields[11]) + int(fields[12])) / tick
    return out


def cpu_used(before: dict[str, float], after: dict[str, float]) -> dict[str, float]:
    return {k: round(after.get(k, 0.0) - before.get(k, 0.0), 2) for k in sorted(after) if after.get(k, 0.0) - before.get(k, 0.0) >= 0.01}


def percentile(values: list[float], q: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=15.0)
    parser.add_argument("--max-requests", type=int, default=5000, help="per client, per phase")
    parser.add_argument("--timeout-s", type=float, default=3.0, help="the server's --timeout-s")
    parser.add_argument("--models", type=Path, help="train the three models here, or reuse them from an earlier run")
    parser.add_argument("--serve-args", default="", help="more `kiln serve` options, e.g. '--generate-nice 0 --busy-hold-s 0'")
    parser.add_argument("--fault-client-nice", type=int, default=0,
                        help="nice value of the misbehaving clients' process (0: same priority as the server)")
    args = parser.parse_args()
    folder = args.models or Path(tempfile.mkdtemp(prefix="kiln-soak-"))
    folder.mkdir(parents=True, exist_ok=True)
    models = {n: folder / n for n in ("tab", "tab2", "gpt")} if (folder / "gpt" / "metrics.json").exists() else train_models(folder)
    port = free_port()
    server = subprocess.Popen([sys.executable, "-c", "from kiln.cli import main; main()", "serve",
                               *[str(models[n]) for n in ("tab", "tab2", "gpt")], "--host", HOST, "--port", str(port),
                               "--timeout-s", str(args.timeout_s), "--no-access-log", "--generate-workers", "2",
                               "--generate-queue-size", "4", *shlex.split(args.serve_args)], stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        try:
            with socket.create_connection((HOST, port), timeout=1):
                break
        except OSError:
            time.sleep(0.3)
    results = {}
    try:
        for name in ("quiet", "mixed", "faults"):
            server_before, client_before = thread_cpu(server.pid), os.times()
            child = None
            if name == "faults":
                context = multiprocessing.get_context("spawn")
                queue = context.Queue()
                child = context.Process(target=fault_process, args=(port, args.seconds, args.max_requests, args.fault_client_nice, queue))
                child.start()
            rec = asyncio.run(phase(port, name, args.seconds, args.max_requests))
            client_after = os.times()
            fault_cpu = 0.0
            if child is not None:
                status, latency, fault_cpu = queue.get(timeout=args.seconds + 120)
                child.join()
                rec.status.update(status)
                for model, values in latency.items():
                    rec.latency.setdefault(model, []).extend(values)
            results[name] = {
                "served": sum(n for k, n in rec.status.items() if k.endswith(" 200")),
                "answers": dict(sorted(rec.status.items())),
                "p50_ms": {m: round(1000 * percentile(v, 0.5), 2) for m, v in rec.latency.items()},
                "p99_ms": {m: round(1000 * percentile(v, 0.99), 2) for m, v in rec.latency.items()},
                "server_cpu_s": cpu_used(server_before, thread_cpu(server.pid)),
                "client_cpu_s": round(client_after.user + client_after.system - client_before.user - client_before.system, 2),
                "fault_client_cpu_s": round(fault_cpu, 2),
            }
    finally:
        server.terminate()
        _, err = server.communicate(timeout=60)
    tracebacks = err.count("Traceback")
    quiet, faults = results["quiet"]["p99_ms"].get("tab"), results["faults"]["p99_ms"].get("tab")
    ratio = round(faults / quiet, 2) if quiet and faults else None
    summary = {"seconds_per_phase": args.seconds, "server_timeout_s": args.timeout_s, "serve_args": args.serve_args,
               "fault_client_nice": args.fault_client_nice, "phases": results,
               "tab_p99_ratio_faults_vs_quiet": ratio, "within_2x": ratio is not None and ratio <= 2.0,
               "server_tracebacks": tracebacks, "server_exit_code": server.returncode, "load_average": os.getloadavg()}
    print(f"kiln serve {' '.join(['--generate-workers 2 --generate-queue-size 4', args.serve_args]).strip()}; "
          f"misbehaving clients' process at nice {args.fault_client_nice}")
    print(f"{'phase':8s} {'model/client':16s} {'answers':>40s} {'p50 ms':>8s} {'p99 ms':>8s}")
    for name, row in results.items():
        kinds: dict[str, Counter] = {}
        for key, n in row["answers"].items():
            model, status = key.split(" ", 1)
            kinds.setdefault(model, Counter())[status] += n
        for model, counts in sorted(kinds.items()):
            text = ", ".join(f"{s}: {n}" for s, n in sorted(counts.items()))
            p50, p99 = row["p50_ms"].get(model), row["p99_ms"].get(model)
            print(f"{name:8s} {model:16s} {text:>40s} {p50 if p50 is not None else '-':>8} {p99 if p99 is not None else '-':>8}")
    for name, row in results.items():
        threads = ", ".join(f"{k} {v:g}" for k, v in row["server_cpu_s"].items())
        print(f"{name:8s} CPU s: server threads: {threads}; clients: {row['client_cpu_s']:g}; fault clients: {row['fault_client_cpu_s']:g}")
    print(f"tab p99 under faults / quiet: {ratio} (target <= 2: {'yes' if summary['within_2x'] else 'NO'}); "
          f"server tracebacks: {tracebacks}; load average: {', '.join(f'{x:.2f}' for x in os.getloadavg())}")
    out = ROOT / "benchmarks" / "results" / "soak.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(summary, indent=2) + "\n")
    print(f"written to {out}")


if __name__ == "__main__":
    main()
