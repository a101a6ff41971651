"""Ludwig: `LudwigModel(config).train(...)` on the split's CSV frames, then `predict` on the test split.

Titanic: a config of the kind Ludwig's Titanic example uses (Pclass, Sex, Embarked as categories; Age,
SibSp, Parch, Fare as numbers; Survived binary; concat combiner). Text: the text column through the
`parallel_cnn` encoder with kiln's vocabulary size and max length, a category output. Trainer: kiln's
epochs, batch size, learning rate and early-stopping patience. The ready mark is the first epoch's
start (Ludwig has preprocessed the data and built the model)."""

from __future__ import annotations

import logging
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import epochs as max_epochs  # noqa: E402
from common import learning_rate, mark_ready, parse_args, read_meta, report, threads  # noqa: E402

import numpy as np  # noqa: E402

import data  # noqa: E402

TITANIC_TYPES = {"numeric": "number", "category": "category", "binary": "category"}


def _config(meta: dict, epochs: int) -> dict:
    tr = meta["trainer"]
    es = tr.get("early_stopping")
    trainer = {"epochs": epochs, "batch_size": tr["batch_size"], "learning_rate": learning_rate(meta),
               "early_stop": es["patience"] if es else -1}
    label = meta["label"]
    text = [n for n, k in meta["inputs"].items() if k == "text"]
    if text and len(meta["inputs"]) == 1:
        spec = meta["text"][text[0]]
        inputs = [{"name": text[0], "type": "text", "encoder": {"type": "parallel_cnn"},
                   "preprocessing": {"max_sequence_length": spec.get("max_length") or 256,
                                     "most_common": spec.get("vocab_size") or 20000}}]
        outputs = [{"name": label, "type": "category"}]
    else:
        inputs = [{"name": n, "type": TITANIC_TYPES[k]} for n, k in meta["inputs"].items() if k in TITANIC_TYPES]
        outputs = [{"name": label, "type": "binary"}]
    return {"input_features": inputs, "output_features": outputs, "combiner": {"type": "concat"}, "trainer": trainer}


def main() -> None:
    args = parse_args()
    import torch

    torch.set_num_threads(threads())
    from ludwig.api import LudwigModel
    from ludwig.callbacks import Callback

    class Ready(Callback):
        def on_epoch_start(self, trainer, progress_tracker, save_path) -> None:  # noqa: ANN001
            mark_ready()

    meta = read_meta(args.work)
    parts = data.frames(args.work)
    y, classes = data.labels(meta, parts)
    label = meta["label"]
    for frame in parts.values():
        if meta["label_type"] != "binary" or meta.get("positive") is not None:
            frame[label] = frame[label].astype(str)
    config = _config(meta, max_epochs(meta, args.params))
    model = LudwigModel(config, logging_level=logging.ERROR, callbacks=[Ready()])
    model.train(training_set=parts["train"], validation_set=parts["validation"], test_set=None,
                output_directory=str(args.work / "runs" / f"ludwig-seed{args.seed}"), random_seed=args.seed,
                skip_save_processed_input=True, skip_save_progress=True)
    preds, _ = model.predict(dataset=parts["test"], skip_save_predictions=True)
    raw = preds[f"{label}_predictions"].to_numpy()
    if config["output_features"][0]["type"] == "binary":
        pred = np.asarray([int(bool(v) and str(v) not in ("False", "0")) for v in raw])
    else:
        index = {c: i for i, c in enumerate(classes)}
        pred = np.asarray([index.get(str(v), -1) for v in raw])
    report(data.score(y["test"], pred, len(classes) == 2), config=config)


if __name__ == "__main__":
    main()
