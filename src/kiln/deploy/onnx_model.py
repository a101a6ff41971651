"""An exported ONNX file run by onnxruntime behind kiln's preprocessing: the supervised Model's
`predict` / `evaluate` / `metrics_for`, with the torch network replaced by an inference session."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from torch import nn

from kiln.data.preprocessor import Preprocessor, TensorData
from kiln.deploy.export import FORMAT, run_session, session, sidecar, trimmable
from kiln.errors import KilnError
from kiln.io import read_json
from kiln.supervised import Model
from kiln.supervised.config import load_supervised_config


class OnnxModel(Model):
    """`kiln predict --runtime onnx`, `kiln serve --runtime onnx`: no torch network at inference."""

    runtime = "onnx"

    def __init__(self, config: Any, preprocessor: Preprocessor, sess: Any, path: Path | None = None) -> None:
        super().__init__(config, preprocessor, nn.Linear(1, 1))  # a placeholder: `device` reads the CPU
        self.session, self.path = sess, path
        self.input_names = [f.name for f in preprocessor.inputs]
        self.trim = trimmable(config, preprocessor.inputs)  # recurrent text models: batches cut to their longest row

    def _logits(self, data: TensorData) -> dict[str, torch.Tensor]:
        return run_session(self.session, self.input_names, data, self.config.trainer.eval_batch_size, self.trim)

    def save(self, path: str | Path) -> Path:
        raise KilnError("an ONNX model is saved by `kiln export`; re-export the kiln model directory")

    @classmethod
    def from_file(cls, path: Path, threads: int = 1) -> "OnnxModel":
        meta = read_json(sidecar(path))
        if not isinstance(meta, dict) or meta.get("format") != FORMAT:
            raise KilnError(f"{sidecar(path)} is not a kiln ONNX preprocessing file (re-run `kiln export`)")
        config = load_supervised_config(meta["config"])
        pre = Preprocessor(config).load_state(meta["preprocessing"])
        try:
            sess = session(path, threads)
        except Exception as exc:  # onnxruntime raises its own types for corrupt files
            raise KilnError(f"{path} is not a readable ONNX file ({type(exc).__name__}: {str(exc).splitlines()[0][:200]})") from None
        model = cls(config, pre, sess, path)
        model.metrics = meta.get("metrics", {})
        return model
