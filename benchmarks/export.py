"""ONNX export parity and speed: for the models in ``--work`` (written by ``benchmarks/compress.py
--work DIR``), export with ``kiln.deploy.export``, then on the test data compare onnxruntime with
torch: max |logit difference|, rows whose predicted class differs, the test metric of both, and
CPU latency per row at batch 1 and 32 (timed side by side, one thread).

Usage::

    .venv/bin/python benchmarks/export.py --work runs/bench-compress [--output benchmarks/results/export.json]
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("KILN_DATA", str(ROOT.parent / "shared" / "data"))


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--work", required=True)
    p.add_argument("--output", default=str(ROOT / "benchmarks" / "results" / "export.json"))
    args = p.parse_args()

    import kiln
    from kiln.deploy import measure
    from kiln.deploy.common import primary_metric, split_frames
    from kiln.deploy.export import export_onnx, load_onnx
    from kiln.io import write_json

    results = []
    print("| model | test rows | max abs diff | classes differing | torch metric | onnxruntime metric | ms/row @1 torch / ort | ms/row @32 torch / ort |")
    print("|---|---|---|---|---|---|---|---|")
    for name, run in (("digits MLP", "digits_mlp"), ("SST-2 LSTM", "sst2_lstm")):
        path = Path(args.work) / run
        if not path.is_dir():
            continue
        model = kiln.load(path)
        onnx_model = load_onnx(export_onnx(path, Path(args.work) / f"{run}.onnx"))
        test = model.preprocessor.transform(split_frames(model)["test"])
        a, b = model._logits(test), onnx_model._logits(test)
        diff = max(float((a[k] - b[k]).abs().max()) for k in a)
        differ = sum(int((a[k].argmax(1) != b[k].argmax(1)).sum()) for k in a)
        m_torch, m_onnx = primary_metric(model.metrics_for(test)), primary_metric(onnx_model.metrics_for(test))
        names = [f.name for f in model.preprocessor.inputs]
        runs = [measure.torch_runner(model.net), measure.onnx_runner(onnx_model.session, names, onnx_model.trim)]
        lat = {b: measure.latencies_ms_per_row(runs, test, b) for b in (1, 32)}
        results.append({"model": name, "rows": len(test), "max_abs_diff": diff, "classes_differing": differ,
                        "metric": m_torch[0], "torch": m_torch[1], "onnxruntime": m_onnx[1], "latency_ms_per_row": lat})
        print(f"| {name} | {len(test)} | {diff:.2e} | {differ} | {m_torch[1]:.4f} | {m_onnx[1]:.4f} | "
              f"{lat[1][0]:.3f} / {lat[1][1]:.3f} | {lat[32][0]:.4f} / {lat[32][1]:.4f} |", flush=True)
    write_json(args.output, {"load_average": os.getloadavg(), "results": results})


if __name__ == "__main__":
    main()
