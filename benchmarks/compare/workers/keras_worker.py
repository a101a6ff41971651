"""Keras 3 on the torch backend: the source's models with kiln's recipe (optimizer, learning rate and
schedule, batch size, epochs; EarlyStopping on validation loss with the best weights restored).

Digits: Dense(256) -> Dropout(0.4) -> Dense(128) -> Dropout(0.4) -> Dense(10), softmax, on the 64
pixels standardised per pixel. Text: TextVectorization (kiln's vocabulary size and max length;
TensorFlow does the string work) -> Embedding(vocab, 64, masked) -> LSTM(128) -> LSTM(64) -> Dense(24)
-> softmax."""

from __future__ import annotations

import os
import sys
from pathlib import Path

os.environ.setdefault("KERAS_BACKEND", "torch")
sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import epochs as max_epochs  # noqa: E402
from common import learning_rate, mark_ready, parse_args, read_meta, report, threads  # noqa: E402

import numpy as np  # noqa: E402

import data  # noqa: E402


def _optimizer(keras, meta: dict, steps: int):  # noqa: ANN001, ANN202
    lr, sched = learning_rate(meta), meta["trainer"]["lr_schedule"]
    if sched["type"] == "cosine":
        warm = sched.get("warmup") or 0
        warm = int(warm if warm >= 1 else warm * steps)
        alpha = sched.get("min_lr", 0.0) / lr
        lr = (keras.optimizers.schedules.CosineDecay(0.0, steps - warm, alpha=alpha, warmup_target=lr, warmup_steps=warm)
              if warm else keras.optimizers.schedules.CosineDecay(lr, steps, alpha=alpha))
    return keras.optimizers.Adam(learning_rate=lr)


def main() -> None:
    args = parse_args()
    import torch

    torch.set_num_threads(threads())
    import keras

    keras.utils.set_random_seed(args.seed)
    meta = read_meta(args.work)
    tr = meta["trainer"]
    if (args.work / "digits.npz").exists():
        split = data.digits(args.work, args.params.get("scaling", "standard"))
        xs, ys = {s: x for s, (x, _) in split.items()}, {s: y for s, (_, y) in split.items()}
        n_classes, binary = 10, False
        model = keras.Sequential([keras.Input((xs["train"].shape[1],)), keras.layers.Dense(256, activation="relu"),
                                  keras.layers.Dropout(0.4), keras.layers.Dense(128, activation="relu"),
                                  keras.layers.Dropout(0.4), keras.layers.Dense(n_classes, activation="softmax")])
    else:
        import tensorflow as tf  # TextVectorization's string ops

        tf.config.threading.set_intra_op_parallelism_threads(threads())
        parts = data.frames(args.work)
        ys, classes = data.labels(meta, parts)
        n_classes, binary = len(classes), len(classes) == 2
        col = data.text_column(meta)
        spec = meta["text"][col]
        vec = keras.layers.TextVectorization(max_tokens=spec.get("vocab_size") or 10000,
                                             output_sequence_length=spec.get("max_length") or 100)
        vec.adapt(parts["train"][col].fillna("").astype(str).to_numpy())
        xs = {s: np.asarray(vec(parts[s][col].fillna("").astype(str).to_numpy())) for s in data.SPLITS}
        vocab = vec.vocabulary_size()
        model = keras.Sequential([keras.Input((xs["train"].shape[1],), dtype="int64"),
                                  keras.layers.Embedding(vocab, 64, mask_zero=True),
                                  keras.layers.LSTM(128, return_sequences=True), keras.layers.LSTM(64),
                                  keras.layers.Dense(24, activation="relu"),
                                  keras.layers.Dense(n_classes, activation="softmax")])
    batch, epochs = tr["batch_size"], max_epochs(meta, args.params)
    steps = epochs * -(-len(ys["train"]) // batch)
    model.compile(optimizer=_optimizer(keras, meta, steps), loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    es = tr.get("early_stopping")
    stop = keras.callbacks.EarlyStopping(monitor="val_loss", patience=es["patience"] if es else epochs + 1,
                                         restore_best_weights=tr.get("restore_best", True))
    mark_ready()
    history = model.fit(xs["train"], ys["train"], batch_size=batch, epochs=epochs, verbose=0,
                        validation_data=(xs["validation"], ys["validation"]), callbacks=[stop])
    pred = model.predict(xs["test"], batch_size=1024, verbose=0).argmax(1)
    report(data.score(ys["test"], pred, binary), epochs_run=len(history.history["loss"]), learning_rate=learning_rate(meta))


if __name__ == "__main__":
    main()
