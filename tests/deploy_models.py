"""Tiny trained supervised models of every exportable type, shared by tests/export, tests/compress
and tests/explain (each trains in about a second on small synthetic data)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

WORDS_POS = ["good", "great", "fine", "lovely", "fun"]
WORDS_NEG = ["bad", "awful", "boring", "dull", "poor"]
FILLER = ["the", "film", "was", "a", "very", "plot", "and"]


def tabular_frame(n: int = 300, seed: int = 0) -> pd.DataFrame:
    """x1 drives y, x2 drives z, color shifts y, noise drives nothing."""
    rng = np.random.default_rng(seed)
    x1, x2, noise = rng.normal(size=n), rng.normal(size=n), rng.normal(size=n)
    color = rng.choice(["red", "green", "blue"], size=n)
    y = ((x1 + (color == "red") * 1.0) > 0.3).astype(int)
    z = (x2 > 0).astype(int)
    return pd.DataFrame({"x1": x1, "x2": x2, "noise": noise, "color": color, "y": y, "z": z,
                         "target": 2.0 * x1 - x2 + rng.normal(scale=0.1, size=n)})


def text_frame(n: int = 240, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    rows = []
    for i in range(n):
        label = i % 2
        words = list(rng.choice(FILLER, size=rng.integers(2, 6))) + list(rng.choice(WORDS_POS if label else WORDS_NEG, size=2))
        rng.shuffle(words)
        rows.append({"sentence": " ".join(words), "label": "pos" if label else "neg"})
    return pd.DataFrame(rows)


def image_frame(n: int = 200, seed: int = 0) -> pd.DataFrame:
    """8x8 images: class 1 has a bright left half."""
    rng = np.random.default_rng(seed)
    images, labels = [], []
    for i in range(n):
        img = rng.normal(scale=0.3, size=(8, 8))
        if i % 2:
            img[:, :4] += 1.5
        images.append(img.astype("float32"))
        labels.append(str(i % 2))
    return pd.DataFrame({"image": images, "label": labels})


def trainer(epochs: int = 8) -> dict[str, Any]:
    return {"epochs": epochs, "batch_size": 32, "optimizer": "adam", "learning_rate": 0.01, "seed": 0}


TABULAR_INPUTS = [{"name": "x1", "type": "numeric"}, {"name": "x2", "type": "numeric"},
                  {"name": "noise", "type": "numeric"}, {"name": "color", "type": "category"}]
TEXT_INPUT = [{"name": "sentence", "type": "text", "max_length": 12}]

CONFIGS: dict[str, dict[str, Any]] = {
    "mlp": {"input_features": TABULAR_INPUTS, "output_features": [{"name": "y", "type": "binary"}],
            "model": {"type": "mlp", "hidden": [16, 8]}},
    "linear": {"input_features": TABULAR_INPUTS, "output_features": [{"name": "target", "type": "numeric"}],
               "model": {"type": "linear"}},
    "mlp_text": {"input_features": TEXT_INPUT, "output_features": [{"name": "label", "type": "category"}],
                 "model": {"type": "mlp", "hidden": [8]}},
    "lstm": {"input_features": TEXT_INPUT, "output_features": [{"name": "label", "type": "category"}],
             "model": {"type": "rnn", "cell": "lstm", "embedding_dim": 8, "rnn_hidden": [12, 8], "hidden": [8]}},
    "gru": {"input_features": TEXT_INPUT, "output_features": [{"name": "label", "type": "category"}],
            "model": {"type": "rnn", "cell": "gru", "embedding_dim": 8, "rnn_hidden": [8], "bidirectional": True}},
    "bilstm_pool": {"input_features": TEXT_INPUT, "output_features": [{"name": "label", "type": "category"}],
                    "model": {"type": "rnn", "embedding_dim": 8, "rnn_hidden": [8, 6], "bidirectional": True,
                              "pool": "max_mean", "embedding_dropout": 0.1}},
    "transformer": {"input_features": TEXT_INPUT, "output_features": [{"name": "label", "type": "category"}],
                    "model": {"type": "transformer", "d_model": 16, "heads": 2, "layers": 1, "hidden": [8]}},
    "transformer_max": {"input_features": TEXT_INPUT, "output_features": [{"name": "label", "type": "category"}],
                        "model": {"type": "transformer", "d_model": 16, "heads": 2, "layers": 1, "pool": "max_mean"}},
    "ngram": {"input_features": [{"name": "sentence", "type": "text", "encoder": "ngram",
                                  "ngram": {"word": [1, 2], "char": [3], "buckets": 4096}}],
              "output_features": [{"name": "label", "type": "category"}], "model": {"type": "linear", "embedding_dim": 8}},
    "ngram_learned": {"input_features": [{"name": "sentence", "type": "text", "encoder": "ngram",
                                          "ngram": {"word": [1], "buckets": 2048, "weighting": "learned", "dropout": 0.2}}],
                      "output_features": [{"name": "label", "type": "category"}], "model": {"type": "mlp", "hidden": [8]}},
    "textcnn": {"input_features": TEXT_INPUT, "output_features": [{"name": "label", "type": "category"}],
                "model": {"type": "cnn", "embedding_dim": 8, "text_kernel_sizes": [2, 3], "text_filters": 6, "hidden": [8],
                          "embedding_dropout": 0.1, "conv_dropout": 0.1}},
    "cnn": {"input_features": [{"name": "image", "type": "image"}], "output_features": [{"name": "label", "type": "category"}],
            "model": {"type": "cnn", "channels": [4], "hidden": [8]}},
}


def frame_for(kind: str) -> pd.DataFrame:
    name = CONFIGS[kind]["input_features"][0]["name"]
    return {"x1": tabular_frame, "sentence": text_frame, "image": image_frame}[name]()


def train_tiny(kind: str, folder: Path, epochs: int = 8, **changes: Any) -> Path:
    """Train model `kind` on its synthetic frame; returns the model directory."""
    import kiln

    config = {**CONFIGS[kind], "data": {"split": {"validation": 0.0, "test": 0.25, "seed": 1}}, "trainer": trainer(epochs)}
    config.update(changes)
    frame: Any = frame_for(kind)
    if kind != "cnn":  # a file path is kept in the config, so compress and explain can re-make the splits
        folder.mkdir(parents=True, exist_ok=True)
        frame.to_csv(folder / f"{kind}.csv", index=False)
        frame = folder / f"{kind}.csv"
    model = kiln.train(config, data=frame, output=folder / kind)
    return model.run_dir / "model"


_TRAINED: dict[str, Path] = {}


def cached_model(kind: str, factory: Any) -> Path:
    """A tiny model trained once per test session (export, compress and explain tests share it)."""
    if kind not in _TRAINED:
        _TRAINED[kind] = train_tiny(kind, factory.mktemp(f"tiny_{kind}"))
    return _TRAINED[kind]
