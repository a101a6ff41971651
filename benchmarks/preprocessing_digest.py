"""Digests of what a config's preprocessing produces: SHA-256 (first 16 hex digits) of every split's encoded
tensors and of the fitted preprocessing state, for checking that a change to preprocessing leaves them
bit-identical (run it on two checkouts and compare). Prints a table; writes benchmarks/results/preprocessing_digest.json.

    KILN_DATA=/work/shared/data .venv/bin/python benchmarks/preprocessing_digest.py \\
        examples/sms_spam_ngram.yaml examples/sst2_ngram.yaml:0.1 examples/sst2_ngram_cnn.yaml
"""

from __future__ import annotations

import hashlib
import json
import sys
from pathlib import Path

import torch

from kiln.config import raw_config
from kiln.io import write_json
from kiln.supervised.task import prepare_data


def digest(tensor: torch.Tensor) -> str:
    return f"{hashlib.sha256(tensor.contiguous().numpy().tobytes()).hexdigest()[:16]} {tuple(tensor.shape)} {tensor.dtype}"


def digests(spec: str) -> dict[str, str]:
    """`path` or `path:sample` (data.sample): each split's tensors and the state, digested."""
    path, _, sample = spec.partition(":")
    config = raw_config(path)
    if sample:
        config["data"]["sample"] = float(sample)
    prepared = prepare_data(config)
    found = {f"{split}/{name}": digest(value) for split, data in prepared.tensors.items()
             for name, value in {**data.inputs, **data.targets}.items()}
    state = json.dumps(prepared.preprocessor.state(), sort_keys=True)
    found["preprocessing state"] = hashlib.sha256(state.encode()).hexdigest()[:16]
    return found


def main() -> None:
    results = {spec: digests(spec) for spec in sys.argv[1:]}
    for spec, found in results.items():
        print(f"| {spec} | | |\n|---|---|---|")
        for what, value in found.items():
            print(f"| | {what} | {value} |")
    out = Path(__file__).parent / "results" / "preprocessing_digest.json"
    write_json(out, results)
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
