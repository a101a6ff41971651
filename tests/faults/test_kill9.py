"""kill -9 at random moments of `kiln train` (supervised, GPT) and `kiln pretrain` (masked LM), then
`--resume` (killed again at random, several times): the final weights and metrics are bit-identical
to an uninterrupted run. Slow: `make test-slow`. kill -9 of `kiln tune` is tested in tests/tune/test_resume.py,
of 2-worker runs in tests/training/test_distributed.py and test_ray_backend.py."""

from __future__ import annotations

import json
import os
import random
from pathlib import Path

import pytest
import torch
import yaml
from _procs import kill_at_random, run_kiln

from kiln.io import load_tensors

pytestmark = pytest.mark.slow
KILLS = int(os.environ.get("KILN_FAULT_KILLS", "3"))
TEXT = "\n".join(["the cat sat on the mat.", "a dog ran to the park!", "ROMEO: what light breaks?"] * 60) + "\n"


def configs(tmp_path: Path, tabular: Path) -> dict[str, tuple[str, dict]]:
    (tmp_path / "text.txt").write_text(TEXT)
    text = str(tmp_path / "text.txt")
    return {
        "supervised": ("train", {
            "data": {"train": str(tabular)},
            "input_features": [{"name": "x", "type": "numeric"}, {"name": "color", "type": "category"}],
            "output_features": [{"name": "y", "type": "binary"}],
            "model": {"type": "mlp", "hidden": [32, 32], "dropout": 0.2},
            "trainer": {"epochs": 12, "batch_size": 4}}),
        "gpt": ("train", {
            "task": "language_modeling", "data": {"train": text}, "tokenizer": {"type": "char"},
            "model": {"type": "gpt", "layers": 2, "heads": 2, "d_model": 32, "block_size": 32, "attention_dropout": 0.1},
            "trainer": {"iterations": 120, "batch_size": 8, "eval_interval": 10, "eval_iters": 2, "threads": 1}}),
        "mlm": ("pretrain", {
            "task": "pretraining", "data": {"train": [text]}, "tokenizer": {"type": "word", "vocab_size": 50, "max_length": 12},
            "model": {"type": "transformer", "d_model": 32, "heads": 2, "layers": 2},
            "trainer": {"iterations": 120, "batch_size": 8, "eval_interval": 10, "eval_iters": 2, "threads": 1}}),
    }


@pytest.mark.parametrize("kind", ["supervised", "gpt", "mlm"])
def test_random_kill9s_resume_bit_identically(tmp_path, tabular, kind):
    command, config = configs(tmp_path, tabular)[kind]
    path = tmp_path / f"{kind}.yaml"
    path.write_text(yaml.safe_dump(config))
    rng = random.Random(kind)
    full, killed = tmp_path / "full", tmp_path / "killed"
    run_kiln([command, str(path), "-q", "-o", str(full)])
    checkpoint = killed / "checkpoint" / "checkpoint.safetensors"
    kills = int(kill_at_random([command, str(path), "-q", "-o", str(killed)], checkpoint, rng, 1.5))
    for _ in range(KILLS - 1):  # kill the resumed run again, at another random moment
        if (killed / "metrics.json").exists():
            break
        kills += kill_at_random([command, str(path), "-q", "--resume", str(killed)], checkpoint, rng, 2.0)
    if not (killed / "metrics.json").exists():
        run_kiln([command, str(path), "-q", "--resume", str(killed)])
    assert kills >= 1
    a, b = load_tensors(full / "model" / "weights.safetensors"), load_tensors(killed / "model" / "weights.safetensors")
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a), f"weights differ after {kills} kills"
    assert json.loads((full / "metrics.json").read_text()) == json.loads((killed / "metrics.json").read_text())
