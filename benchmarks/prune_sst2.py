"""Pruning criteria side by side, without fine-tuning, on trained models (accuracy only, no timing).

For each model directory: every criterion (``kiln.deploy.prune.apply_pruning``, as ``kiln compress``
runs it) at ``--amount`` of the prunable weight matrices, then the test-split accuracy (SST-2: dev),
the share of test predictions equal to the dense model's, the mean KL divergence of the dense
model's class probabilities from the pruned model's on the test split, the accuracy on the model's
validation split (larger, so less noisy: not used for calibration), the sparsity reached over the
prunable matrices, and the CPU seconds the pruning took. Usage::

    .venv/bin/python benchmarks/prune_sst2.py RUN_DIR [RUN_DIR ...] [--amount 0.5] [--output benchmarks/results/prune_sst2.json]
"""

from __future__ import annotations

import argparse
import copy
import os
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
os.environ.setdefault("OMP_NUM_THREADS", "1")
VARIANTS = {
    "magnitude, global": {"criterion": "magnitude", "scope": "global"},
    "magnitude, per layer": {"criterion": "magnitude", "scope": "layer"},
    "activation (Wanda)": {"criterion": "activation"},
    "reconstruct, 50% of every matrix": {"criterion": "reconstruct", "scope": "layer"},
    "reconstruct, shares spread (default)": {"criterion": "reconstruct", "scope": "global"},
}


def measure(run: str, amount: float) -> dict:
    import torch
    from torch.nn.utils import prune as torch_prune

    import kiln
    from kiln.deploy.common import split_frames
    from kiln.deploy.compress import calibration_batches
    from kiln.deploy.prune import apply_pruning, prunable
    from kiln.deploy.spec import PruneSpec

    model = kiln.load(run)
    frames = split_frames(model)
    pre = model.preprocessor
    out = pre.outputs[0].name
    splits = {name: pre.transform(frames[name]) for name in ("test", "validation") if name in frames}
    if "validation" not in splits:  # no validation split: the test split stands in (its columns repeat)
        splits["validation"] = splits["test"]

    def logits(net: torch.nn.Module, split: str) -> torch.Tensor:
        data = splits[split]
        with torch.inference_mode():
            return torch.cat([net({k: v[s : s + 512] for k, v in data.inputs.items()})[out] for s in range(0, len(data), 512)])

    def accuracy(found: torch.Tensor, split: str) -> float:
        return float((found.argmax(-1) == splits[split].targets[out]).float().mean())

    dense = model.net.cpu().eval()
    base = {split: logits(dense, split) for split in splits}
    result = {"model": run, "test_accuracy": accuracy(base["test"], "test"),
              "validation_accuracy": accuracy(base["validation"], "validation"), "variants": {}}
    print(f"\n{run}: test accuracy {result['test_accuracy']:.4f} ({len(splits['test'])} rows), validation "
          f"{result['validation_accuracy']:.4f} ({len(splits['validation'])} rows)")
    print("| variant | test accuracy | Δ points | same prediction as dense | KL(dense ‖ pruned) | validation accuracy | Δ points | sparsity | CPU s |")
    print("|---|---|---|---|---|---|---|---|---|")
    for label, options in VARIANTS.items():
        spec = PruneSpec(amount=amount, **options)
        net = copy.deepcopy(dense)
        calibration = calibration_batches(model, frames, spec.calibration_rows) if spec.criterion != "magnitude" else []
        tick = time.process_time()
        for module, name in apply_pruning(net, spec, calibration):
            torch_prune.remove(module, name)
        seconds = time.process_time() - tick
        net.eval()
        found = {split: logits(net, split) for split in splits}
        kl = torch.nn.functional.kl_div(found["test"].log_softmax(-1), base["test"].log_softmax(-1), log_target=True,
                                        reduction="batchmean")
        weights = [getattr(m, n) for m, n in prunable(net, False)]
        row = {"spec": spec.model_dump(), "test_accuracy": accuracy(found["test"], "test"),
               "agreement": float((found["test"].argmax(-1) == base["test"].argmax(-1)).float().mean()), "kl": float(kl),
               "validation_accuracy": accuracy(found["validation"], "validation"),
               "sparsity": sum(int((w == 0).sum()) for w in weights) / sum(w.numel() for w in weights), "cpu_seconds": seconds}
        result["variants"][label] = row
        print(f"| {label} | {row['test_accuracy']:.4f} | {100 * (row['test_accuracy'] - result['test_accuracy']):+.2f} | "
              f"{row['agreement']:.4f} | {row['kl']:.4f} | {row['validation_accuracy']:.4f} | "
              f"{100 * (row['validation_accuracy'] - result['validation_accuracy']):+.2f} | {row['sparsity']:.4f} | {seconds:.1f} |",
              flush=True)
    return result


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("runs", nargs="+", help="trained model or run directories")
    p.add_argument("--amount", type=float, default=0.5)
    p.add_argument("--output", default=str(ROOT / "benchmarks" / "results" / "prune_sst2.json"))
    args = p.parse_args(argv)
    from kiln.io import write_json

    load_before = os.getloadavg()
    results = [measure(run, args.amount) for run in args.runs]
    write_json(args.output, {"command": "python benchmarks/prune_sst2.py " + " ".join(argv if argv is not None else sys.argv[1:]),
                             "amount": args.amount, "load_average_before": load_before, "load_average_after": os.getloadavg(),
                             "results": results})
    print(f"\nwritten {args.output}")


if __name__ == "__main__":
    main()
