"""The supervised artefact: config + fitted preprocessing + network, with Keras-style `predict`,
`evaluate` and `save`, saved as a pickle-free directory (weights.safetensors + model.json)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd
import torch

from kiln.artifact import (ARTIFACTS, FORMAT_VERSION, META, WEIGHTS, TrainedModel, from_dir_checked, load_weights, read_meta,
                           saved_state_errors)
from kiln.data import as_frame
from kiln.data.cleaning import clean_frame
from kiln.data.preprocessor import Preprocessor, TensorData
from kiln.errors import KilnError
from kiln.io import save_tensors, write_json
from kiln.models import MODELS, build_network
from kiln.models.budget import LOADING_COPIES
from kiln.supervised.config import TASK, SupervisedConfig, load_supervised_config


@torch.inference_mode()
def predict_logits(net: torch.nn.Module, data: TensorData, batch_size: int) -> dict[str, torch.Tensor]:
    """Logits of every output for every row, in eval mode, as float32 on the CPU."""
    net.eval()
    device = next(net.parameters()).device
    parts: dict[str, list[torch.Tensor]] = {}
    for start in range(0, len(data), batch_size):
        inputs = {k: v[start : start + batch_size].to(device) for k, v in data.inputs.items()}
        for name, logits in net(inputs).items():
            parts.setdefault(name, []).append(logits.float().cpu())
    return {name: torch.cat(chunks) for name, chunks in parts.items()}


@ARTIFACTS.register(TASK)
class Model(TrainedModel):
    """Keras-style `predict` / `evaluate` / `save` over the exact preprocessing used in training."""

    kind = TASK

    def __init__(self, config: SupervisedConfig, preprocessor: Preprocessor, net: torch.nn.Module) -> None:
        super().__init__(config, net)
        self.preprocessor = preprocessor

    def _logits(self, data: TensorData) -> dict[str, torch.Tensor]:
        return predict_logits(self.net, data, self.config.trainer.eval_batch_size)

    @saved_state_errors
    def predict(self, data: pd.DataFrame | str | Path | list | dict) -> pd.DataFrame:
        """Predictions (and class probabilities) for each row, in input order. A folder of audio files
        (a model with one audio input and no other) predicts each file, named in the first column."""
        folder = isinstance(data, (str, Path)) and Path(data).is_dir()
        frame = self._folder_table(Path(data)) if folder else as_frame(data)  # type: ignore[arg-type]
        if frame.empty:
            raise KilnError(f"prediction data is empty (0 rows{', no .wav/.flac/.ogg files in ' + str(data) if folder else ''})")
        predictions = self.predict_tensors(self.preprocessor.transform(frame, targets=False, where="prediction data"), frame.index)
        return pd.concat([frame, predictions], axis=1) if folder else predictions

    def predict_tensors(self, data: TensorData, index: pd.Index) -> pd.DataFrame:
        """Predictions (and class probabilities) for rows already encoded by the preprocessing."""
        logits = self._logits(data)
        columns: dict[str, Any] = {}
        for feature in self.preprocessor.outputs:
            columns.update(feature.decode(logits[feature.name]))
        return pd.DataFrame(columns, index=index)

    def _folder_table(self, folder: Path) -> pd.DataFrame:
        from kiln.features.audio_io import folder_table

        inputs = self.preprocessor.inputs
        if len(inputs) != 1 or inputs[0].type != "audio":
            raise KilnError(f"{folder} is a folder: only a model with a single audio input predicts a folder of files; "
                            f"this one has inputs {[f'{f.name} ({f.type})' for f in inputs]}; give a table instead")
        return folder_table(folder, inputs[0].column)

    @saved_state_errors
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

    def save(self, path: str | Path, weights: bool = True) -> Path:
        """Write `weights.safetensors` (unless `weights` is False) and `model.json` (config + preprocessing
        state) to a directory."""
        path = Path(path)
        path.mkdir(parents=True, exist_ok=True)
        if weights:
            save_tensors(path / WEIGHTS, {k: v.cpu() for k, v in self.net.state_dict().items()})
        meta = {
            "format_version": FORMAT_VERSION,
            "kind": TASK,
            "config": self.config.model_dump(mode="json"),
            "preprocessing": self.preprocessor.state(),
            **MODELS.get(self.config.model.type)().save_extras(self.config.model, self.net),
        }
        write_json(path / META, meta)
        return path

    @classmethod
    def load(cls, path: str | Path) -> "Model":
        """Load a saved supervised model (a model directory or a run directory)."""
        folder, meta = read_meta(path)
        return from_dir_checked(cls, folder, meta)

    @classmethod
    def from_dir(cls, path: Path, meta: dict[str, Any]) -> "Model":
        config = load_supervised_config(meta["config"])
        try:
            pre = Preprocessor(config).load_state(meta["preprocessing"])
        except (KeyError, TypeError, ValueError) as exc:
            raise KilnError(f"{path / META}: the preprocessing state is invalid ({type(exc).__name__}: {exc})") from None
        MODELS.get(config.model.type)().load_extras(config.model, meta, path)
        net = build_network(config.model, pre.inputs, pre.outputs, copies=LOADING_COPIES)
        net.load_state_dict(load_weights(path, net))
        return cls(config, pre, net)

