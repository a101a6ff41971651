"""Distillation on the digits MLP: the same student (MLP [32], ~21× fewer parameters than the
256-128 teacher) trained on hard labels only vs distilled, over several seeds, for a few settings of
temperature T and alpha, and distilled on a larger transfer set (`distill.data`: the training
split's images plus twice as many unlabelled blends of two training images, which the teacher labels).

Every student is trained by `kiln.deploy.distill.train_student` on kiln's one Trainer, with the same
trainer section (epochs, learning rate, restore_best on validation loss) for both kinds; test
accuracy on the model's 360-row test split. Usage::

    .venv/bin/python benchmarks/distill.py [--seeds 0 1 2] [--epochs 30] [--work runs/bench-distill]
        [--teacher-epochs 10] [--output benchmarks/results/distill.json]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("KILN_DATA", str(ROOT.parent / "shared" / "data"))
STUDENT = {"type": "mlp", "hidden": [32], "dropout": 0.1}


def transfer_set(frame, copies: int = 2, seed: int = 0):  # noqa: ANN001, ANN201 - pandas in, pandas out
    """The training images plus `copies` × as many unlabelled blends of two random training images
    (weights 0.2–0.8): rows the teacher labels with soft, informative targets."""
    import numpy as np
    import pandas as pd

    rng = np.random.default_rng(seed)
    images = np.stack([np.asarray(img, dtype="float32").ravel() for img in frame["image"]])
    n = len(images) * copies
    a, b = rng.integers(0, len(images), n), rng.integers(0, len(images), n)
    weight = rng.uniform(0.2, 0.8, size=(n, 1)).astype("float32")
    blends = weight * images[a] + (1 - weight) * images[b]
    return pd.DataFrame({"image": list(images) + list(blends)})  # flat 64 values: read back as 8x8


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    p.add_argument("--epochs", type=int, default=30)
    p.add_argument("--teacher-epochs", type=int, default=10)
    p.add_argument("--work", default=str(ROOT / "runs" / "bench-distill"))
    p.add_argument("--teacher-only", action="store_true", help="print the teacher's figures and stop")
    p.add_argument("--settings", nargs="*", help="run only these settings (by name)")
    p.add_argument("--output", default=str(ROOT / "benchmarks" / "results" / "distill.json"))
    args = p.parse_args(argv)

    import kiln
    from kiln.config import apply_overrides, read_yaml
    from kiln.deploy.common import split_frames
    from kiln.deploy.distill import student_rows, train_student
    from kiln.io import write_json

    load_before = os.getloadavg()
    work = Path(args.work)
    teacher_dir = work / f"teacher-{args.teacher_epochs}ep"
    if not (teacher_dir / "model").is_dir():
        cfg = apply_overrides(read_yaml(ROOT / "examples" / "digits_mlp.yaml"), [f"trainer.epochs={args.teacher_epochs}"])
        kiln.train(cfg, output=teacher_dir)
    teacher = kiln.load(teacher_dir)
    frames = split_frames(teacher)
    test = teacher.preprocessor.transform(frames["test"])
    teacher_acc = teacher.metrics_for(test)["accuracy"]
    train = teacher.preprocessor.transform(frames["train"])
    logits = teacher._logits(train)["label"]
    memorised = {"train_accuracy": float((logits.argmax(-1) == train.targets["label"]).float().mean()),
                 "mean_top_probability": float(logits.softmax(-1).max(-1).values.mean()),
                 "mean_top_probability_T4": float((logits / 4).softmax(-1).max(-1).values.mean())}
    print(f"teacher on its own training rows: accuracy {memorised['train_accuracy']:.4f}, mean top probability "
          f"{memorised['mean_top_probability']:.4f} (at T=4: {memorised['mean_top_probability_T4']:.4f})")
    if args.teacher_only:
        return
    transfer = work / "digits_train_blends.parquet"
    transfer_set(frames["train"]).to_parquet(transfer)
    extra = student_rows(teacher, str(transfer))
    settings = [("hard labels only", 1.0, 1.0, None), ("T=4, alpha=0.5", 4.0, 0.5, None), ("T=2, alpha=0.5", 2.0, 0.5, None),
                ("T=4, alpha=0.1", 4.0, 0.1, None), ("T=4, alpha=0.5, train rows + 2x unlabelled blends", 4.0, 0.5, extra)]
    settings = [s for s in settings if s[0] in args.settings] if args.settings else settings
    results = []
    print(f"teacher ({args.teacher_epochs} epochs): test accuracy {teacher_acc:.4f}; train rows {len(frames['train'])}, "
          f"transfer rows {len(extra)}")
    for name, t, alpha, rows in settings:
        accs = []
        tick = time.perf_counter()
        for seed in args.seeds:
            student = train_student(teacher, STUDENT, frames, t, alpha, {"epochs": args.epochs, "seed": seed}, rows=rows)
            accs.append(student.metrics_for(test)["accuracy"])
        mean = statistics.mean(accs)
        results.append({"setting": name, "temperature": t, "alpha": alpha, "accuracies": accs, "mean": mean,
                        "of_teacher": mean / teacher_acc})
        print(f"| {name} | {' '.join(f'{a:.4f}' for a in accs)} | {mean:.4f} | {mean / teacher_acc:.1%} | "
              f"{time.perf_counter() - tick:.0f} s |", flush=True)
    write_json(args.output, {"command": "python benchmarks/distill.py " + " ".join(argv if argv is not None else sys.argv[1:]),
                             "teacher_epochs": args.teacher_epochs, "teacher_accuracy": teacher_acc, "teacher_on_train": memorised, "student": STUDENT,
                             "seeds": args.seeds, "epochs": args.epochs, "results": results,
                             "load_average_before": load_before, "load_average_after": os.getloadavg()})
    print(f"load average before {load_before[0]:.2f}, after {os.getloadavg()[0]:.2f}; written {args.output}")


if __name__ == "__main__":
    main()
