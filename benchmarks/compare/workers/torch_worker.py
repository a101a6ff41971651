"""Plain PyTorch: the MLP of kiln's config in a hand-written loop with kiln's recipe (optimizer, learning
rate and schedule, batch size, epochs, early stopping on validation loss, best weights restored).

Digits: the 64 pixels standardised per pixel. Tables: numbers median-imputed and standardised,
categories one-hot, text a binary bag of words (workers/data.py)."""

from __future__ import annotations

import copy
import math
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import epochs as max_epochs  # noqa: E402
from common import learning_rate, mark_ready, parse_args, read_meta, report, threads  # noqa: E402

import numpy as np  # noqa: E402
import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402
from torch import nn  # noqa: E402

import data  # noqa: E402


def mlp(n_in: int, n_out: int, hidden: list[int], dropout: float) -> nn.Module:
    layers: list[nn.Module] = []
    for width in hidden:
        layers += [nn.Linear(n_in, width), nn.ReLU(), nn.Dropout(dropout)]
        n_in = width
    return nn.Sequential(*layers, nn.Linear(n_in, n_out))


def lr_factor(schedule: dict, step: int, total: int, base: float) -> float:
    warmup = schedule.get("warmup") or 0
    warmup = int(warmup if warmup >= 1 else warmup * total)
    if step < warmup:
        return (step + 1) / warmup
    if schedule["type"] == "cosine":
        floor = schedule.get("min_lr", 0.0) / base
        progress = min(1.0, (step - warmup) / max(1, total - 1 - warmup))
        return floor + 0.5 * (1 + math.cos(math.pi * progress)) * (1 - floor)
    return 1.0


def main() -> None:
    args = parse_args()
    torch.set_num_threads(threads())
    torch.manual_seed(args.seed)
    meta = read_meta(args.work)
    if (args.work / "digits.npz").exists():
        split = data.digits(args.work, args.params.get("scaling", "standard"))
        xs = {s: torch.from_numpy(x) for s, (x, _) in split.items()}
        ys = {s: torch.from_numpy(y) for s, (_, y) in split.items()}
        binary = False
    else:
        parts = data.frames(args.work)
        feats = data.tabular(meta, parts)
        labels, classes = data.labels(meta, parts)
        xs = {s: torch.from_numpy(feats[s]) for s in feats}
        ys = {s: torch.from_numpy(labels[s]) for s in labels}
        binary = len(classes) == 2
    n_classes = int(max(int(y.max()) for y in ys.values())) + 1
    spec, tr = meta["model"], meta["trainer"]
    net = mlp(xs["train"].shape[1], n_classes, spec.get("hidden", []), spec.get("dropout", 0.0))
    lr = learning_rate(meta)
    opt = torch.optim.Adam(net.parameters(), lr=lr)
    batch, epochs = tr["batch_size"], max_epochs(meta, args.params)
    n = len(ys["train"])
    total = epochs * math.ceil(n / batch)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: lr_factor(tr["lr_schedule"], s, total, lr))
    es = tr.get("early_stopping")
    patience = es["patience"] if es else None
    gen = torch.Generator().manual_seed(args.seed)
    mark_ready()
    best, best_state, waited = float("inf"), None, 0
    epochs_run = 0
    for _ in range(epochs):
        epochs_run += 1
        net.train()
        for idx in torch.randperm(n, generator=gen).split(batch):
            loss = F.cross_entropy(net(xs["train"][idx]), ys["train"][idx])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
        net.eval()
        with torch.no_grad():
            val = F.cross_entropy(net(xs["validation"]), ys["validation"]).item()
        if val < best:
            best, waited = val, 0
            if tr.get("restore_best", True):
                best_state = copy.deepcopy(net.state_dict())
        else:
            waited += 1
            if patience is not None and waited >= patience:
                break
    if best_state is not None:
        net.load_state_dict(best_state)
    net.eval()
    with torch.no_grad():
        pred = net(xs["test"]).argmax(1).numpy()
    report(data.score(ys["test"].numpy(), pred, binary), epochs_run=epochs_run)


if __name__ == "__main__":
    main()
