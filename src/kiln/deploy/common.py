"""Pieces shared by export, compress and explain: loading a supervised model, its data splits,
and a network wrapper that takes positional tensors (what ONNX and Captum need)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd
import torch
from torch import nn

from kiln.errors import KilnError


def load_supervised(path: str | Path) -> Any:
    """A saved supervised model; other kinds (language models, pre-trained encoders) get one line."""
    import kiln.deploy.compressed  # noqa: F401  (registers the compressed artefact; imports kiln.supervised)
    from kiln.artifact import ARTIFACTS, kind_of, read_meta

    folder, meta = read_meta(path)
    kind = kind_of(meta)
    if kind not in ("supervised", kiln.deploy.compressed.KIND):
        raise KilnError(f"{path}: a '{kind}' model; export, compress and explain take supervised models")
    return ARTIFACTS.get(kind).from_dir(folder, meta)


def split_frames(model: Any, data: pd.DataFrame | str | Path | None = None) -> dict[str, pd.DataFrame]:
    """The model's own train/validation/test splits, re-made from its config (same seed, same rows);
    or, when `data` is given, that labelled data as the test split."""
    from kiln.data import as_frame, clean_frame
    from kiln.supervised.task import load_splits

    pre = model.preprocessor
    if data is not None:
        frame, _ = clean_frame(as_frame(data), pre.inputs, pre.outputs, drop_duplicates=False, where="evaluation data")
        return {"test": frame}
    try:
        frames, _ = load_splits(model.config)
    except (OSError, KilnError) as exc:
        raise KilnError(f"cannot re-make the model's data splits ({exc}); pass labelled data with --data") from None
    return frames


class PositionalNet(nn.Module):
    """`net(dict) -> dict` as `net(*inputs) -> tuple`, in the preprocessor's input and output order."""

    def __init__(self, net: nn.Module, input_names: list[str], output_names: list[str]) -> None:
        super().__init__()
        self.net, self.input_names, self.output_names = net, input_names, output_names

    def forward(self, *tensors: torch.Tensor) -> tuple[torch.Tensor, ...]:
        outputs = self.net(dict(zip(self.input_names, tensors)))
        return tuple(outputs[name] for name in self.output_names)


def primary_metric(metrics: dict[str, Any]) -> tuple[str, float, bool]:
    """(name, value, higher is better) of the metric compression guards: accuracy, else r2, else loss."""
    flat = metrics if "loss" in metrics else next(iter(metrics.values()))
    for name, higher in (("accuracy", True), ("r2", True), ("loss", False)):
        if isinstance(flat.get(name), (int, float)):
            return name, float(flat[name]), higher
    raise KilnError("the model's metrics have no accuracy, r2 or loss")
