"""Compression on the digits MLP and a SST-2 LSTM: size, latency per row, throughput and test metric
before and after dynamic int8 (torch.ao and onnxruntime), static int8 (onnxruntime; torch.ao on the
digits MLP) and pruning (magnitude, activation-aware, and activation mask + least-squares reconstruction).

* digits MLP: ``examples/digits_mlp.yaml`` as it is (10 epochs, ~30 s), test split 20% (360 rows).
* SST-2 LSTM: ``examples/sst2_lstm.yaml`` on a stratified sample of the training file
  (``--sst2-sample``, default 0.1 ≈ 6,700 sentences) for ``--sst2-epochs`` (default 3): the full
  run takes ~15+ minutes on this machine. Test set: the whole SST-2 dev.tsv (872 sentences).
  ``--no-sst2`` skips it.

Every variant is measured by ``kiln.deploy.compress`` itself (median of 5 timings, one thread).
Usage::

    .venv/bin/python benchmarks/compress.py [--sst2-sample 0.1] [--sst2-epochs 3] [--no-sst2]
        [--work runs/bench-compress [--reuse]] [--student-epochs 30] [--only 0 2 5] [--no-digits] [--sst2-only 0 1]
        [--output benchmarks/results/compress.json]
"""

from __future__ import annotations

import argparse
import os
import platform
import shutil
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("KILN_DATA", str(ROOT.parent / "shared" / "data"))
BATCHES = (1, 32, 64)


def variants(sst2: bool, transfer: str | None = None, student_epochs: int = 30) -> list[tuple[str, dict]]:
    common = {"modules": ["linear", "lstm", "embedding"]} if sst2 else {"modules": ["linear"]}
    out = [("int8 dynamic, torch.ao", {"quantize": {"type": "dynamic", "engine": "torch", **common}}),
           ("int8 dynamic, onnxruntime", {"quantize": {"type": "dynamic", "engine": "onnxruntime", **common}})]
    if not sst2:
        out.append(("int8 static, onnxruntime", {"quantize": {"type": "static", "engine": "onnxruntime", **common}}))
    out += [("prune 50% global, no fine-tune", {"prune": {"amount": 0.5}}),
            ("prune 50% global + 1 epoch fine-tune", {"prune": {"amount": 0.5, "fine_tune_epochs": 1}})]
    if not sst2:  # teacher 256-128 (50,826 parameters) → student 32 (2,410): 21× fewer
        student = {"model": {"type": "mlp", "hidden": [32], "dropout": 0.1}, "trainer": {"epochs": student_epochs}}
        out.append(("distil into MLP [32], T=4, alpha=0.5, vs the same student on hard labels",
                    {"distill": {"student": student, "temperature": 4.0, "alpha": 0.5, "compare_hard_labels": True}}))
        if transfer:  # benchmarks/distill.py: the training images + 2x unlabelled blends of two of them
            out.append(("distil into MLP [32], T=4, alpha=0.5, on train rows + 2x unlabelled blends (distill.data)",
                        {"distill": {"student": student, "temperature": 4.0, "alpha": 0.5, "data": transfer}}))
    if not sst2:  # the LSTM model's recurrent layers would stay fp32 (static int8 in torch covers trunk and heads)
        out.append(("int8 static, torch.ao", {"quantize": {"type": "static", "engine": "torch", **common}}))
    out.append(("prune 50% by activation (|w|·‖x‖ per output row), no fine-tune", {"prune": {"amount": 0.5, "criterion": "activation"}}))
    out.append(("prune 50% by reconstruction (activation mask, kept weights re-fit; shares spread by output change), no fine-tune",
                {"prune": {"amount": 0.5, "criterion": "reconstruct"}}))
    out.append(("prune 50% by reconstruction, 50% of every matrix (scope: layer), no fine-tune",
                {"prune": {"amount": 0.5, "criterion": "reconstruct", "scope": "layer"}}))
    return out


def run_model(name: str, model_dir: Path, work: Path, sst2: bool, student_epochs: int = 30,
              only: list[int] | None = None) -> list[dict]:
    import kiln
    from kiln.deploy.common import split_frames
    from kiln.deploy.compress import compress

    transfer = None
    if not sst2:
        sys.path.insert(0, str(ROOT / "benchmarks"))
        from distill import transfer_set

        transfer = str(work / "digits_transfer.parquet")
        transfer_set(split_frames(kiln.load(model_dir))["train"]).to_parquet(transfer)
    results = []
    for i, (label, spec) in enumerate(variants(sst2, transfer, student_epochs)):
        if only is not None and i not in only:
            continue
        tick = time.perf_counter()
        target = work / f"{name.lower().replace(' ', '_').replace('-', '')}-{i}"
        shutil.rmtree(target, ignore_errors=True)
        report = compress(model_dir, target, spec, batch_sizes=BATCHES)
        print(f"\n## {name}: {label}  ({time.perf_counter() - tick:.0f} s)")
        print("\n".join(report["table"]), flush=True)
        results.append({"model": name, "variant": label, "spec": spec, "rows": report["rows"], "table": report["table"]})
    return results


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--sst2-sample", type=float, default=0.1)
    p.add_argument("--sst2-epochs", type=int, default=3)
    p.add_argument("--no-sst2", action="store_true")
    p.add_argument("--student-epochs", type=int, default=30, help="distillation: the student's epochs (both kinds)")
    p.add_argument("--only", nargs="*", help="digits variants to run, by number (0-based; default all)")
    p.add_argument("--sst2-only", nargs="*", help="SST-2 variants to run, by number (0-based; default all)")
    p.add_argument("--no-digits", action="store_true")
    p.add_argument("--work", help="keep the trained and compressed models here (default: a temporary folder)")
    p.add_argument("--reuse", action="store_true", help="reuse the models already trained in --work")
    p.add_argument("--output", default=str(ROOT / "benchmarks" / "results" / "compress.json"))
    args = p.parse_args(argv)

    import kiln
    from kiln.config import apply_overrides, read_yaml
    from kiln.io import write_json

    load_before = os.getloadavg()
    results = []
    with tempfile.TemporaryDirectory() as folder:
        work = Path(args.work or folder)
        if args.reuse and (work / "digits_mlp" / "model").is_dir():
            digits_dir = work / "digits_mlp"
        else:
            digits_dir = kiln.train(ROOT / "examples" / "digits_mlp.yaml", output=work / "digits_mlp").run_dir
        if not args.no_digits:
            results += run_model("digits MLP", digits_dir, work, sst2=False, student_epochs=args.student_epochs,
                                 only=[int(i) for i in args.only] if args.only else None)
        if not args.no_sst2:
            if args.reuse and (work / "sst2_lstm" / "model").is_dir():
                lstm_dir = work / "sst2_lstm"
            else:
                tick = time.perf_counter()
                cfg = apply_overrides(read_yaml(ROOT / "examples" / "sst2_lstm.yaml"),
                                      [f"data.sample={args.sst2_sample}", f"trainer.epochs={args.sst2_epochs}"])
                lstm = kiln.train(cfg, output=work / "sst2_lstm")
                lstm_dir = lstm.run_dir
                print(f"\nSST-2 LSTM trained on {args.sst2_sample:.0%} of train.tsv for {args.sst2_epochs} epochs in "
                      f"{time.perf_counter() - tick:.0f} s; dev accuracy {lstm.metrics['test']['accuracy']:.4f}")
            results += run_model("SST-2 LSTM", lstm_dir, work, sst2=True,
                                 only=[int(i) for i in args.sst2_only] if args.sst2_only else None)
    write_json(args.output, {
        "command": "python benchmarks/compress.py " + " ".join(argv if argv is not None else sys.argv[1:]),
        "threads": int(os.environ["OMP_NUM_THREADS"]), "machine": platform.processor() or platform.machine(),
        "load_average_before": load_before, "load_average_after": os.getloadavg(),
        "sst2": None if args.no_sst2 else {"sample": args.sst2_sample, "epochs": args.sst2_epochs},
        "results": results,
    })
    print(f"\nload average before {load_before[0]:.2f}, after {os.getloadavg()[0]:.2f}; written {args.output}")


if __name__ == "__main__":
    main()
