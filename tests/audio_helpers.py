"""Tiny synthetic audio datasets for tests: WAV files written with numpy + soundfile (no real data)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import soundfile as sf

RATE = 8000


def make_tones(root: Path, per_class: int = 12, speakers: int = 3) -> Path:
    """`root/clips/*.wav`: a low (300 Hz, label 'low') or high (1500 Hz, 'high') tone with noise and a random
    length; `root/index.csv` with relative `path`, `label`, `speaker` and a `split` column (every 4th row test)."""
    rng = np.random.default_rng(0)
    (root / "clips").mkdir(parents=True, exist_ok=True)
    rows = []
    for i in range(2 * per_class):
        label = ("low", "high")[i % 2]
        freq = (300.0, 1500.0)[i % 2] * rng.uniform(0.95, 1.05)
        t = np.arange(int(RATE * rng.uniform(0.15, 0.4))) / RATE
        wave = 0.4 * np.sin(2 * np.pi * freq * t) + rng.normal(scale=0.02, size=len(t))
        name = f"clips/{i}_{label}.wav"
        sf.write(root / name, wave.astype("float32"), RATE)
        rows.append({"path": name, "label": label, "speaker": f"s{i % speakers}", "split": "test" if i % 4 == 3 else "train"})
    pd.DataFrame(rows).to_csv(root / "index.csv", index=False)
    return root / "index.csv"


def audio_config(table: Path, **split) -> dict:
    return {
        "data": {"train": str(table), "split": {"validation": 0.0, "test": 0.25, "seed": 1, **split}},
        "input_features": [{"name": "path", "type": "audio", "sample_rate": RATE, "max_duration": 0.5, "n_mels": 16,
                            "cache": False}],
        "output_features": [{"name": "label", "type": "category"}],
        "model": {"type": "cnn", "channels": [4, 8], "hidden": [8]},
        "trainer": {"epochs": 3, "batch_size": 8, "learning_rate": 0.01},
    }
