"""Before/after figures of a model variant: file size, parameters, non-zero parameters, CPU
latency per row at batch 1 and batch 64 (or the sizes asked for), throughput, test metrics."""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable, Sequence
from typing import Any

import torch

from kiln.data.preprocessor import TensorData
from kiln.deploy.common import primary_metric

BATCH_SIZES = (1, 64)


def batch_of(data: TensorData, size: int) -> dict[str, torch.Tensor]:
    """The first `size` rows (repeated when the split is smaller)."""
    index = torch.arange(size) % len(data)
    return {k: v[index] for k, v in data.inputs.items()}


def latencies_ms_per_row(runs: Sequence[Callable[[dict[str, torch.Tensor]], Any]], data: TensorData, batch: int,
                         rows: int = 2048, repeats: int = 7, clock: Callable[[], float] = time.perf_counter) -> list[float]:
    """Per variant, the median over `repeats` of the mean time per row over about `rows` rows in batches of
    `batch`. Variants are timed in turn within each repeat, so a busy machine slows them alike.
    `clock=time.process_time` counts this process's CPU time instead (one-thread runs on a loaded machine)."""
    inputs = batch_of(data, batch)
    calls = max(3, min(200, rows // batch))
    for run in runs:
        for _ in range(3):
            run(inputs)
    times: list[list[float]] = [[] for _ in runs]
    for _ in range(repeats):
        for i, run in enumerate(runs):
            tick = clock()
            for _ in range(calls):
                run(inputs)
            times[i].append((clock() - tick) / (calls * batch))
    return [statistics.median(t) * 1000.0 for t in times]


def torch_runner(net: torch.nn.Module) -> Callable[[dict[str, torch.Tensor]], Any]:
    net.eval()

    def run(inputs: dict[str, torch.Tensor]) -> Any:
        with torch.inference_mode():
            return net(inputs)

    return run


def onnx_runner(session: Any, names: list[str], trim: dict[str, int] | None = None) -> Callable[[dict[str, torch.Tensor]], Any]:
    """Runs a batch through onnxruntime as OnnxModel does (`trim`: inputs cut to the batch's longest row)."""
    from kiln.deploy.export import trimmed

    feed_names, cut = list(names), dict(trim or {})

    def run(inputs: dict[str, torch.Tensor]) -> Any:
        batch = trimmed({name: inputs[name] for name in feed_names}, cut)
        return session.run(None, {name: tensor.numpy() for name, tensor in batch.items()})

    return run


def count_parameters(net: torch.nn.Module) -> tuple[int, int]:
    """(parameters, non-zero parameters) of a float network."""
    params = [p.detach() for p in net.parameters()]
    return sum(p.numel() for p in params), sum(int(torch.count_nonzero(p)) for p in params)


def variant(name: str, model: Any, run: Callable[[dict[str, torch.Tensor]], Any], size_bytes: int,
            counts: tuple[int, int]) -> dict[str, Any]:
    """A model variant to measure: its runner, file size and (parameters, non-zero parameters)."""
    return {"name": name, "model": model, "run": run, "size_bytes": int(size_bytes), "counts": counts}


def rows(variants: list[dict[str, Any]], data: TensorData, batch_sizes: Sequence[int] = BATCH_SIZES,
         timing_rows: int = 2048, repeats: int = 7) -> list[dict[str, Any]]:
    """The lines of the before/after table, latencies measured side by side."""
    latency = {str(b): latencies_ms_per_row([v["run"] for v in variants], data, b, timing_rows, repeats) for b in batch_sizes}
    largest = str(max(batch_sizes))
    out = []
    for i, v in enumerate(variants):
        metrics = v["model"].metrics_for(data)
        flat = metrics if "loss" in metrics else next(iter(metrics.values()))
        metric, value, _ = primary_metric(metrics)
        out.append({
            "variant": v["name"], "size_bytes": v["size_bytes"], "parameters": v["counts"][0], "nonzero_parameters": v["counts"][1],
            "latency_ms_per_row": {b: latency[b][i] for b in latency},
            "throughput_rows_per_s": 1000.0 / latency[largest][i], "throughput_batch": int(largest),
            "metric": metric, "value": value, "metrics": {k: x for k, x in flat.items() if isinstance(x, (int, float))},
        })
    return out


def table_lines(rows: list[dict[str, Any]]) -> list[str]:
    """The table as Markdown (terminal, docs and report use the same text)."""
    base = rows[0]
    sizes = list(base["latency_ms_per_row"])
    head = ["variant", "size KiB", "size ×", "params", "non-zero", *[f"ms/row @{b}" for b in sizes],
            *[f"speed-up @{b}" for b in sizes], f"rows/s @{base['throughput_batch']}", base["metric"], "Δ"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for r in rows:
        cells = [r["variant"], f"{r['size_bytes'] / 1024:.1f}", f"{r['size_bytes'] / base['size_bytes']:.2f}",
                 f"{r['parameters']:,}", f"{r['nonzero_parameters']:,}",
                 *[f"{r['latency_ms_per_row'][b]:.4f}" for b in sizes],
                 *[f"{base['latency_ms_per_row'][b] / r['latency_ms_per_row'][b]:.2f}×" for b in sizes],
                 f"{r['throughput_rows_per_s']:,.0f}", f"{r['value']:.4f}", f"{r['value'] - base['value']:+.4f}"]
        lines.append("| " + " | ".join(cells) + " |")
    return lines


def report_table(rows: list[dict[str, Any]]) -> tuple[list[str], list[list[Any]]]:
    """(header, cells) of the table in report.html: the figures above plus every scalar test metric."""
    base = rows[0]
    sizes = list(base["latency_ms_per_row"])
    metrics = list(dict.fromkeys(name for r in rows for name in r["metrics"]))
    header = ["variant", "size KiB", "size ×", "parameters", "non-zero parameters", *[f"ms/row @{b}" for b in sizes],
              *[f"speed-up @{b}" for b in sizes], f"rows/s @{base['throughput_batch']}", *[f"test {m}" for m in metrics]]
    cells = [[r["variant"], f"{r['size_bytes'] / 1024:.1f}", f"{r['size_bytes'] / base['size_bytes']:.2f}", r["parameters"],
              r["nonzero_parameters"], *[r["latency_ms_per_row"][b] for b in sizes],
              *[f"{base['latency_ms_per_row'][b] / r['latency_ms_per_row'][b]:.2f}×" for b in sizes],
              round(r["throughput_rows_per_s"]), *[r["metrics"].get(m) for m in metrics]] for r in rows]
    return header, cells
