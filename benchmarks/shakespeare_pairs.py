"""Prompt → target pairs from the validation part of Tiny Shakespeare, for `kiln evaluate` on a
language model (BLEU, ROUGE, target loss).

The validation part is the last 10% of the characters (as `examples/shakespeare_gpt.yaml` splits
it), so no pair overlaps the training text. ``--pairs`` offsets are spread evenly over it; from each
offset the next line of speech (not empty, not a ``NAME:`` header) is the target (without its
newline) and the ``--context`` characters before it are the prompt.

Usage::

    KILN_DATA=../shared/data .venv/bin/python benchmarks/shakespeare_pairs.py [--pairs 20] [--context 200]
        [--output /tmp/shakespeare_pairs.csv]
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

import pandas as pd


def make_pairs(text: str, pairs: int, context: int, validation: float = 0.1) -> pd.DataFrame:
    start = int(round(len(text) * (1.0 - validation))) + context  # the first prompt starts inside validation
    span = len(text) - start - 1000
    rows = []
    for i in range(pairs):
        pos = text.index("\n", start + i * span // pairs) + 1
        while True:
            end = text.index("\n", pos)
            line = text[pos:end]
            if line.strip() and not line.rstrip().endswith(":"):
                break
            pos = end + 1
        rows.append({"prompt": text[pos - context : pos], "target": line})
    return pd.DataFrame(rows)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    default = Path(os.environ.get("KILN_DATA", "../shared/data")) / "tinyshakespeare" / "input.txt"
    p.add_argument("--text", type=Path, default=default, help="Tiny Shakespeare input.txt (default $KILN_DATA/tinyshakespeare/input.txt)")
    p.add_argument("--pairs", type=int, default=20)
    p.add_argument("--context", type=int, default=200, help="prompt length in characters")
    p.add_argument("--output", type=Path, default=Path("/tmp/shakespeare_pairs.csv"))
    args = p.parse_args()
    frame = make_pairs(args.text.read_text(encoding="utf-8"), args.pairs, args.context)
    frame.to_csv(args.output, index=False)
    print(f"{len(frame)} pairs written to {args.output}")


if __name__ == "__main__":
    main()
