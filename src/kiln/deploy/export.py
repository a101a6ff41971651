"""ONNX export of a supervised model, and `OnnxModel`: the exported file run by onnxruntime behind
kiln's own preprocessing (written beside it as JSON), with the same `predict` / `evaluate`.

The TorchScript-based exporter (`dynamo=False`) is used; recurrent encoders are exported through
their unpacked twin (kiln.deploy.unpacked), since neither exporter handles packed sequences. Batch is a dynamic axis of every input and output; text
inputs also have a dynamic sequence axis."""

from __future__ import annotations

import io
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import torch

from kiln.deploy.common import PositionalNet, load_supervised
from kiln.deploy.unpacked import exportable
from kiln.errors import KilnError
from kiln.io import atomic_path, write_json

OPSET = 17
FORMAT = "kiln-onnx"
EXPORTABLE = ("mlp", "linear", "cnn", "rnn", "transformer")


def sidecar(onnx_path: Path) -> Path:
    """The preprocessing JSON written beside an exported file: model.onnx → model.preprocessing.json."""
    return onnx_path.with_suffix(".preprocessing.json")


def example_inputs(features: list[Any], rows: int = 2) -> tuple[torch.Tensor, ...]:
    """Dummy tensors with each input feature's dtype and shape (tracing only needs their shapes)."""
    tensors = []
    for feature in features:
        info = feature.describe()
        if feature.type in ("numeric", "binary"):
            tensors.append(torch.zeros(rows, 1))
        elif feature.type == "category":
            tensors.append(torch.ones(rows, dtype=torch.int64))
        elif info.get("encoder") == "ngram":  # (rows, 2, width): bucket ids over weights; one row half padding
            bag = torch.zeros(rows, 2, info["width"])
            bag[:, 0], bag[:, 1] = 1.0, 1.0 / info["width"]
            bag[1:, :, (info["width"] + 1) // 2 :] = 0.0
            tensors.append(bag)
        elif feature.type == "text":
            ids = torch.full((rows, info["max_length"]), 2, dtype=torch.int64)
            ids[1:, info["max_length"] // 2 :] = 0  # one padded row: the traced graph must not assume full length
            tensors.append(ids)
        elif feature.type == "image":
            tensors.append(torch.zeros(rows, *feature.shape))
        else:
            raise KilnError(f"cannot export input feature '{feature.name}' of type {feature.type}")
    return tuple(tensors)


def onnx_bytes(model: Any) -> bytes:
    """The model's network as an ONNX file (fp32, weights inside), in memory."""
    model_type = model.config.model.type
    if model_type not in EXPORTABLE:
        raise KilnError(f"model type '{model_type}' cannot be exported to ONNX yet; exportable: {', '.join(EXPORTABLE)}")
    pre = model.preprocessor
    inputs, outputs = [f.name for f in pre.inputs], [f.name for f in pre.outputs]
    wrapper = PositionalNet(exportable(model.net), inputs, outputs).cpu().eval()
    axes: dict[str, dict[int, str]] = {}
    for feature in pre.inputs:
        sequence = feature.type == "text" and feature.describe().get("encoder") != "ngram"
        axes[feature.name] = {0: "batch", 1: f"{feature.name}_length"} if sequence else {0: "batch"}
    axes.update({name: {0: "batch"} for name in outputs})
    buffer = io.BytesIO()
    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore")  # tracer warnings about Python values in shape arithmetic
        torch.onnx.export(wrapper, example_inputs(pre.inputs), buffer, dynamo=False, opset_version=OPSET,
                          input_names=inputs, output_names=outputs, dynamic_axes=axes, do_constant_folding=True)
    return buffer.getvalue()


def preprocessing_meta(model: Any) -> dict[str, Any]:
    return {
        "format": FORMAT,
        "format_version": 1,
        "opset": OPSET,
        "config": model.config.model_dump(mode="json"),
        "preprocessing": model.preprocessor.state(),
        "metrics": model.metrics,
    }


def export_onnx(model_dir: str | Path, output: str | Path) -> Path:
    """Write OUTPUT (a .onnx file, or a directory that gets model.onnx) and its preprocessing JSON."""
    model = load_supervised(model_dir)
    path = Path(output)
    if path.suffix != ".onnx":
        path = path / "model.onnx"
    path.parent.mkdir(parents=True, exist_ok=True)
    data = onnx_bytes(model)
    with atomic_path(path) as tmp:
        tmp.write_bytes(data)
    write_json(sidecar(path), preprocessing_meta(model))
    return path


def find_onnx(path: str | Path) -> Path:
    """An exported .onnx file, or the single one inside a directory."""
    path = Path(path)
    if path.is_dir():
        found = sorted(path.glob("*.onnx"))
        if len(found) != 1:
            hint = " (a kiln model directory: run `kiln export` on it first)" if (path / "model.json").is_file() else ""
            raise KilnError(f"{path}: not an exported kiln ONNX model: expected one .onnx file (from `kiln export`), "
                            f"found {len(found)}{hint}")
        path = found[0]
    if not path.is_file() or not sidecar(path).is_file():
        raise KilnError(f"{path}: not an exported kiln ONNX model (expected the .onnx file and {sidecar(path).name} beside it)")
    return path


def session(source: str | Path | bytes, threads: int = 1) -> Any:
    """An onnxruntime CPU inference session."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.log_severity_level = 3
    return ort.InferenceSession(source if isinstance(source, bytes) else str(source), options, providers=["CPUExecutionProvider"])


def trimmable(config: Any, inputs: Any) -> dict[str, int]:
    """Text inputs (name -> pad id) whose padded tail the exported network ignores, so that a batch can be
    cut to its longest row: recurrent encoders (their unpacked twin reads each row's state at its last
    token and masks the padding, as packing does in torch) and text Transformers (padded keys masked,
    padded positions out of the pooling; torch trims them the same way) and text CNNs (windows wholly on
    padding are masked out of the max). Other encoders may see the padding, so their batches keep the
    full padded length."""
    if config.model.type not in ("rnn", "transformer", "cnn"):
        return {}
    return {f.name: int(f.describe()["pad_id"]) for f in inputs if f.type == "text" and f.describe().get("encoder") != "ngram"}


def trimmed(inputs: dict[str, torch.Tensor], trim: dict[str, int]) -> dict[str, torch.Tensor]:
    """The batch with each trimmable input cut to its longest row (padding comes after the tokens)."""
    out = dict(inputs)
    for name, pad in trim.items():
        ids = inputs[name]
        out[name] = ids[:, : max(1, int((ids != pad).sum(1).max()) if len(ids) else 1)]
    return out


def run_session(sess: Any, names: list[str], data: Any, batch_size: int, trim: dict[str, int] | None = None) -> dict[str, torch.Tensor]:
    """Logits of every output for TensorData rows, computed by onnxruntime in batches (`trim`: see `trimmable`)."""
    outputs = [o.name for o in sess.get_outputs()]
    parts: dict[str, list[np.ndarray]] = {name: [] for name in outputs}
    for start in range(0, len(data), batch_size):
        batch = trimmed({name: data.inputs[name][start : start + batch_size] for name in names}, trim or {})
        feed = {name: tensor.numpy() for name, tensor in batch.items()}
        for name, value in zip(outputs, sess.run(outputs, feed)):
            parts[name].append(value)
    return {name: torch.from_numpy(np.concatenate(chunks)) for name, chunks in parts.items()}


def load_onnx(path: str | Path, threads: int = 1) -> "Any":
    """An exported model as an OnnxModel (predict / evaluate like kiln.load's Model)."""
    from kiln.deploy.onnx_model import OnnxModel

    return OnnxModel.from_file(find_onnx(path), threads)
