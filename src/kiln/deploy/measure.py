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


def latency_ms_per_row(run: Callable[[dict[str, torch.Tensor]], Any], data: TensorData, batch: int,
                       rows: int = 2048, repeats: int = 5) -> float:
    """Median over `repeats` of the mean time per row, running about `rows` rows in batches of `batch`."""
    inputs = batch_of(data, batch)
    calls = max(3, min(200, rows // batch))
    for _ in range(3):
        run(inputs)
    times = []
    for _ in range(repeats):
        tick = time.perf_counter()
        for _ in range(calls):
            run(inputs)
        times.append((time.perf_counter() - tick) / (calls * batch))
    return statistics.median(times) * 1000.0


def torch_runner(net: torch.nn.Module) -> Callable[[dict[str, torch.Tensor]], Any]:
    net.eval()

    def run(inputs: dict[str, torch.Tensor]) -> Any:
        with torch.inference_mode():
            return net(inputs)

    return run


def onnx_runner(session: Any, names: list[str]) -> Callable[[dict[str, torch.Tensor]], Any]:
    feed_names = list(names)

    def run(inputs: dict[str, torch.Tensor]) -> Any:
        return session.run(None, {name: inputs[name].numpy() for name in feed_names})

    return run


def count_parameters(net: torch.nn.Module) -> tuple[int, int]:
    """(parameters, non-zero parameters) of a float network."""
    params = [p.detach() for p in net.parameters()]
    return sum(p.numel() for p in params), sum(int(torch.count_nonzero(p)) for p in params)


def row(name: str, model: Any, run: Callable[[dict[str, torch.Tensor]], Any], data: TensorData, size_bytes: int,
        counts: tuple[int, int], batch_sizes: Sequence[int] = BATCH_SIZES) -> dict[str, Any]:
    """One line of the before/after table."""
    metrics = model.metrics_for(data)
    metric, value, _ = primary_metric(metrics)
    latency = {str(b): latency_ms_per_row(run, data, b) for b in batch_sizes}
    largest = str(max(batch_sizes))
    return {
        "variant": name,
        "size_bytes": int(size_bytes),
        "parameters": counts[0],
        "nonzero_parameters": counts[1],
        "latency_ms_per_row": latency,
        "throughput_rows_per_s": 1000.0 / latency[largest],
        "throughput_batch": int(largest),
        "metric": metric,
        "value": value,
        "metrics": {k: v for k, v in (metrics if "loss" in metrics else next(iter(metrics.values()))).items()
                    if isinstance(v, (int, float))},
    }


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
