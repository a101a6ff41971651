"""AdamW's default CPU implementation (a loop of tensor ops per parameter) vs torch's fused kernel on CPU, on the SST-2 n-gram bag's shape (a 262,144 × 16 table,
batch 64 of 720 n-gram slots, weight decay 1.0): milliseconds per training step, split into forward, backward and
optimizer. The inputs are random ids with the weights a real batch has (tf-idf, ~156 n-grams a row).

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/fused_adam.py [--steps 200]
"""

from __future__ import annotations

import argparse
import time

import torch

from kiln.models.ngram import NgramBagEncoder


def measure(fused: bool, steps: int) -> dict[str, float]:
    torch.manual_seed(0)
    ids = torch.randint(1, 262_144, (steps * 64, 720)).float()
    ids[:, 156:] = 0  # a row's n-grams fill the first slots; the rest is padding
    x = torch.stack([ids, (ids > 0).float() / 156 ** 0.5], dim=1)
    y = torch.randint(0, 2, (len(x),))
    enc, head = NgramBagEncoder(262_144, 16, dropout=0.3), torch.nn.Linear(16, 2)
    opt = torch.optim.AdamW([*enc.parameters(), *head.parameters()], lr=1e-3, weight_decay=1.0, fused=fused)
    times = {"forward": 0.0, "backward": 0.0, "optimizer": 0.0}
    for i in range(0, len(x), 64):
        a = time.perf_counter()
        loss = torch.nn.functional.cross_entropy(head(enc(x[i:i + 64])), y[i:i + 64])
        b = time.perf_counter()
        opt.zero_grad()
        loss.backward()
        c = time.perf_counter()
        opt.step()
        d = time.perf_counter()
        times["forward"] += b - a
        times["backward"] += c - b
        times["optimizer"] += d - c
    return {k: v / steps * 1000 for k, v in times.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=200)
    args = parser.parse_args()
    torch.set_num_threads(1)
    print("| AdamW | forward ms | backward ms | optimizer ms | step ms |\n|---|---|---|---|---|")
    for fused in (False, True):
        t = measure(fused, args.steps)
        print(f"| {'fused' if fused else 'default'} | {t['forward']:.2f} | {t['backward']:.2f} | {t['optimizer']:.2f} | {sum(t.values()):.2f} |")


if __name__ == "__main__":
    main()
