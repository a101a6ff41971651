"""A trained model: config + fitted preprocessing + network, saved as a pickle-free directory."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd
import torch

from kiln.config import RunConfig, load_config
from kiln.data import as_frame
from kiln.data.cleaning import clean_frame
from kiln.data.preprocessor import Preprocessor, TensorData
from kiln.errors import KilnError
from kiln.io import load_tensors, read_json, save_tensors, write_json
from kiln.models import MODELS, build_network

WEIGHTS, META = "weights.safetensors", "model.json"
FORMAT_VERSION = 1


class TrainedModel:
    """What every trained kiln model carries (supervised, language model, pre-trained encoder):
    its config, network, metrics, training history and run directory."""

    def __init__(self, config: Any, net: torch.nn.Module) -> None:
        self.config = config
        self.net = net
        self.metrics: dict[str, Any] = {}
        self.history: list[dict[str, Any]] = []
        self.run_dir: Path | None = None

    @property
    def device(self) -> torch.device:
        return next(self.net.parameters()).device

    def to(self, device: str | torch.device) -> "TrainedModel":
        self.net.to(device)
        return self


class Model(TrainedModel):
    """Keras-style `predict` / `evaluate` / `save` over the exact preprocessing used in training."""

    def __init__(self, config: RunConfig, preprocessor: Preprocessor, net: torch.nn.Module) -> None:
        super().__init__(config, net)
        self.preprocessor = preprocessor

    def _logits(self, data: TensorData) -> dict[str, torch.Tensor]:
        self.net.eval()
        size = self.config.trainer.eval_batch_size
        parts: dict[str, list[torch.Tensor]] = {}
        with torch.inference_mode():
            for start in range(0, len(data), size):
                inputs = {k: v[start : start + size].to(self.device) for k, v in data.inputs.items()}
                for name, logits in self.net(inputs).items():
                    parts.setdefault(name, []).append(logits.float().cpu())
        return {name: torch.cat(chunks) for name, chunks in parts.items()}

    def predict(self, data: pd.DataFrame | str | Path | list | dict) -> pd.DataFrame:
        """Predictions (and class probabilities) for each row, in input order."""
        frame = as_frame(data)
        if frame.empty:
            raise KilnError("prediction data is empty (0 rows)")
        logits = self._logits(self.preprocessor.transform(frame, targets=False, where="prediction data"))
        columns: dict[str, Any] = {}
        for feature in self.preprocessor.outputs:
            columns.update(feature.decode(logits[feature.name]))
        return pd.DataFrame(columns, index=frame.index)

    def evaluate(self, data: pd.DataFrame | str | Path) -> dict[str, Any]:
        """Loss and metrics over all labelled rows (rows without a label are dropped and counted)."""
        pre = self.preprocessor
        frame, report = clean_frame(as_frame(data), pre.inputs, pre.outputs, drop_duplicates=False, where="evaluation data")
        metrics = self.metrics_for(pre.transform(frame, where="evaluation data"))
        if report.get("rows_missing_label_dropped"):
            metrics["rows_missing_label_dropped"] = report["rows_missing_label_dropped"]
        return metrics

    def metrics_for(self, data: TensorData) -> dict[str, Any]:
        logits = self._logits(data)
        result = {f.name: f.metrics(logits[f.name], data.targets[f.name]) for f in self.preprocessor.outputs}
        return next(iter(result.values())) if len(result) == 1 else result

    def save(self, path: str | Path) -> Path:
        """Write `weights.safetensors` and `model.json` (config + preprocessing state) to a directory."""
        path = Path(path)
        path.mkdir(parents=True, exist_ok=True)
        save_tensors(path / WEIGHTS, {k: v.cpu() for k, v in self.net.state_dict().items()})
        meta = {
            "format_version": FORMAT_VERSION,
            "config": self.config.model_dump(mode="json"),
            "preprocessing": self.preprocessor.state(),
            **MODELS.get(self.config.model.type)().save_extras(self.config.model, self.net),
        }
        write_json(path / META, meta)
        return path

    @classmethod
    def load(cls, path: str | Path) -> "Model":
        path = Path(path)
        if (path / "model" / META).is_file():
            path = path / "model"  # a run directory
        if not (path / META).is_file() or not (path / WEIGHTS).is_file():
            raise KilnError(f"not a kiln model directory: {path} (expected {META} and {WEIGHTS})")
        meta = read_json(path / META)
        config = load_config(meta["config"])
        pre = Preprocessor(config).load_state(meta["preprocessing"])
        MODELS.get(config.model.type)().load_extras(config.model, meta, path)
        net = build_network(config.model, pre.inputs, pre.outputs)
        try:
            net.load_state_dict(load_tensors(path / WEIGHTS))
        except RuntimeError as exc:
            raise KilnError(f"weights in {path} do not match its config: {str(exc).splitlines()[0]}") from None
        return cls(config, pre, net)


def load(path: str | Path) -> Model:
    """Load a saved model (a model directory or a run directory); a language model (model.json
    kind "language_model") loads as a kiln.lm.LanguageModel."""
    from kiln.lm.model import LanguageModel, is_language_model_dir
    from kiln.pretrain.api import KIND as PRETRAINED, PretrainedEncoder

    if is_language_model_dir(path):
        return LanguageModel.load(path)  # type: ignore[return-value]
    root = Path(path) / "model" if (Path(path) / "model" / META).is_file() else Path(path)
    if (root / META).is_file() and read_json(root / META).get("kind") == PRETRAINED:
        return PretrainedEncoder.load(path, field="model directory")  # type: ignore[return-value]
    return Model.load(path)
