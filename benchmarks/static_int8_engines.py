"""torch.ao static int8 on a kiln model: which quantised engine is fastest here (x86, fbgemm, qnnpack,
onednn), timed side by side against the fp32 network, plus test accuracy. The model is a directory that
``kiln compress MODEL -o DIR --quantize static`` wrote (its calibrated ranges are reused for every engine).

Usage::

    .venv/bin/python benchmarks/static_int8_engines.py runs/digits_static [--batches 1 32 64 256]
        [--repeats 7] [--output benchmarks/results/static_int8_engines.json]
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
os.environ.setdefault("OMP_NUM_THREADS", "1")


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("model", help="a directory written by kiln compress --quantize static (engine torch)")
    p.add_argument("--batches", type=int, nargs="+", default=[1, 32, 64, 256])
    p.add_argument("--repeats", type=int, default=7)
    p.add_argument("--cpu-time", action="store_true", help="time with this process's CPU time (one thread), not the wall clock")
    p.add_argument("--output", default=str(ROOT / "benchmarks" / "results" / "static_int8_engines.json"))
    args = p.parse_args(argv)

    import torch

    import kiln
    from kiln.deploy import measure, static_int8
    from kiln.deploy.common import split_frames
    from kiln.io import write_json

    model = kiln.load(args.model)
    test = model.preprocessor.transform(split_frames(model)["test"])
    nets = {"fp32": model.float_net}
    for name in ("x86", "fbgemm", "qnnpack", "onednn"):
        if name in torch.backends.quantized.supported_engines:
            nets[name] = static_int8.build(model.float_net, model.recipe["static_qparams"], name)
    accuracy = {}
    for name, net in nets.items():
        with torch.inference_mode():
            logits = net(test.inputs)
        out = model.preprocessor.outputs[0].name
        accuracy[name] = float((logits[out].argmax(-1) == test.targets[out]).float().mean())
    load_before = os.getloadavg()
    clock = time.process_time if args.cpu_time else time.perf_counter
    latency = {b: measure.latencies_ms_per_row([measure.torch_runner(n) for n in nets.values()], test, b, 4096, args.repeats, clock)
               for b in args.batches}
    print("| network | test accuracy | " + " | ".join(f"ms/row @{b} (speed-up)" for b in args.batches) + " |")
    print("|---|---|" + "---|" * len(args.batches))
    for i, name in enumerate(nets):
        cells = [f"{latency[b][i]:.4f} ({latency[b][0] / latency[b][i]:.2f}×)" for b in args.batches]
        print(f"| {name} | {accuracy[name]:.4f} | " + " | ".join(cells) + " |")
    ops = layer_ops(model.float_net, args.batches, clock)
    print("\n| Linear layer (in → out) | batch | fp32 F.linear µs | int8 quantized::linear (x86) µs | speed-up |")
    print("|---|---|---|---|---|")
    for row in ops:
        print(f"| {row['in']} → {row['out']} | {row['batch']} | {row['fp32_us']:.1f} | {row['int8_us']:.1f} | {row['fp32_us'] / row['int8_us']:.2f}× |")
    write_json(args.output, {"layer_ops": ops,"command": "python benchmarks/static_int8_engines.py " + " ".join(argv or sys.argv[1:]),
                             "clock": clock.__name__, "load_average_before": load_before, "load_average_after": os.getloadavg(),
                             "accuracy": accuracy, "ms_per_row": {str(b): dict(zip(nets, v)) for b, v in latency.items()}})
    print(f"load average before {load_before[0]:.2f}, after {os.getloadavg()[0]:.2f}; written {args.output}")


def layer_ops(net, batches: list[int], clock) -> list[dict]:
    """Each Linear layer of the trunk and heads alone: fp32 F.linear against torch's int8 Linear op on
    quantised input, to show the fixed cost per int8 call."""
    import statistics
    import warnings

    import torch

    torch.backends.quantized.engine = "x86" if "x86" in torch.backends.quantized.supported_engines else "qnnpack"
    rows = []
    layers = [m for m in [*net.trunk, *net.heads] if isinstance(m, torch.nn.Linear)]
    for layer in layers:
        w, b = layer.weight.detach(), layer.bias.detach()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            packed = torch.ops.quantized.linear_prepack(torch.quantize_per_tensor(w, float(w.abs().max()) / 127, 0, torch.qint8), b)
        for batch in batches:
            x = torch.randn(batch, w.shape[1])
            qx = torch.quantize_per_tensor(x, 0.05, 128, torch.quint8)
            times = {}
            for name, call in (("fp32", lambda: torch.nn.functional.linear(x, w, b)),
                               ("int8", lambda: torch.ops.quantized.linear(qx, packed, 0.1, 64))):
                with torch.inference_mode():
                    for _ in range(20):
                        call()
                    runs = []
                    for _ in range(5):
                        tick = clock()
                        for _ in range(500):
                            call()
                        runs.append((clock() - tick) / 500 * 1e6)
                times[name] = statistics.median(runs)
            rows.append({"in": w.shape[1], "out": w.shape[0], "batch": batch, "fp32_us": times["fp32"], "int8_us": times["int8"]})
    return rows


if __name__ == "__main__":
    main()
