"""Integrated gradients on trained models: completeness error (|sum of attributions − (score −
baseline score)| / |score − baseline score|) at the 50th/90th percentile and milliseconds per row,
for ``--rows`` rows explained one batch at a time, at ``--steps`` steps.

Models: the run directories written by ``benchmarks/compress.py --work DIR`` (digits MLP and the
SST-2 LSTM); rows: the digits test split and the first sentences of SST-2 dev.tsv.
Usage::

    .venv/bin/python benchmarks/explain.py --work runs/bench-compress [--rows 100] [--steps 50]
        [--output benchmarks/results/explain.json]
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("KILN_DATA", str(ROOT.parent / "shared" / "data"))


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--work", required=True)
    p.add_argument("--rows", type=int, default=100)
    p.add_argument("--steps", type=int, default=50)
    p.add_argument("--output", default=str(ROOT / "benchmarks" / "results" / "explain.json"))
    args = p.parse_args()

    import pandas as pd

    import kiln
    from kiln.deploy.common import split_frames
    from kiln.deploy.explain import explain_rows, reference_data
    from kiln.io import write_json

    results = []
    for name, run, frame_of in (
        ("digits MLP", "digits_mlp", lambda m: split_frames(m)["test"]),
        ("SST-2 LSTM", "sst2_lstm", lambda m: pd.read_csv(Path(os.environ["KILN_DATA"]) / "sst2" / "dev.tsv", sep="\t")),
    ):
        path = Path(args.work) / run
        if not path.is_dir():
            print(f"{name}: {path} missing, skipped")
            continue
        model = kiln.load(path)
        frame = frame_of(model).head(args.rows)
        reference = reference_data(model, frame)
        times, errors = [], []
        for i in range(len(frame)):  # one row per call: the latency a user of `explain` sees per sentence
            tick = time.perf_counter()
            rows = explain_rows(model, frame.iloc[i : i + 1], reference, args.steps)
            times.append(time.perf_counter() - tick)
            errors.append(rows[0]["completeness_error"])
        errors.sort()
        result = {"model": name, "rows": len(frame), "steps": args.steps,
                  "ms_per_row_median": 1000 * statistics.median(times),
                  "completeness_error_p50": errors[len(errors) // 2], "completeness_error_p90": errors[int(0.9 * len(errors)) - 1]}
        print(f"| {name} | {result['rows']} | {args.steps} | {result['ms_per_row_median']:.1f} | "
              f"{result['completeness_error_p50']:.4f} | {result['completeness_error_p90']:.4f} |", flush=True)
        results.append(result)
    write_json(args.output, {"load_average": os.getloadavg(), "results": results})


if __name__ == "__main__":
    main()
