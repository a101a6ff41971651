"""The compressed supervised artefact (model.json kind `supervised_compressed`): an ordinary kiln
model directory whose chosen weight matrices are stored as int8 + one float32 scale per row in
weights.safetensors, and whose model.json records the compression recipe. Loading dequantises the
weights and, for `quantize.engine: torch`, re-applies torch.ao int8 quantisation when this torch has
it: dynamic, or static with the activation ranges recorded in model.json (static_int8.py); else it
runs the dequantised weights in fp32, with one warning."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import torch
from torch import nn

from kiln.artifact import ARTIFACTS, FORMAT_VERSION, META, WEIGHTS
from kiln.data.preprocessor import Preprocessor, TensorData
from kiln.deploy import quantize, static_int8
from kiln.errors import KilnError
from kiln.io import load_tensors, save_tensors, write_json
from kiln.models import MODELS, build_network
from kiln.supervised import Model
from kiln.supervised.config import load_supervised_config

KIND = "supervised_compressed"
log = logging.getLogger("kiln")


def runtime_net(float_net: nn.Module, recipe: dict[str, Any]) -> nn.Module:
    """What inference runs: the torch.ao dynamic or static int8 network, or the float one."""
    spec = recipe.get("quantize") or {}
    if spec.get("engine") != "torch":
        return float_net
    if not quantize.torch_quantization_available():
        log.warning("torch.ao quantisation is not available in this torch; running the int8-stored weights in fp32")
        return float_net
    if spec.get("type") == "static":
        if not recipe.get("static_qparams"):  # compressed where torch.ao was missing: no calibrated ranges
            log.warning("this model was compressed without torch.ao; running its int8-stored weights in fp32")
            return float_net
        return static_int8.build(float_net.eval(), recipe["static_qparams"])
    return quantize.dynamic_int8(float_net.eval(), spec["modules"])


@ARTIFACTS.register(KIND)
class CompressedModel(Model):
    """A Model whose inference network may be quantised (no parameters, CPU only)."""

    kind = KIND

    def __init__(self, config: Any, preprocessor: Preprocessor, float_net: nn.Module, recipe: dict[str, Any]) -> None:
        super().__init__(config, preprocessor, runtime_net(float_net, recipe))
        self.float_net, self.recipe = float_net, recipe

    @property
    def device(self) -> torch.device:
        return torch.device("cpu")

    def to(self, device: str | torch.device) -> "CompressedModel":
        if torch.device(device).type != "cpu":
            raise KilnError("compressed models run on the CPU")
        return self

    @torch.inference_mode()
    def _logits(self, data: TensorData) -> dict[str, torch.Tensor]:
        self.net.eval()
        size = self.config.trainer.eval_batch_size
        parts: dict[str, list[torch.Tensor]] = {}
        for start in range(0, len(data), size):
            for name, logits in self.net({k: v[start : start + size] for k, v in data.inputs.items()}).items():
                parts.setdefault(name, []).append(logits.float())
        return {name: torch.cat(chunks) for name, chunks in parts.items()}

    def save(self, path: str | Path) -> Path:
        path = Path(path)
        path.mkdir(parents=True, exist_ok=True)
        state = {k: v.detach().cpu() for k, v in self.float_net.state_dict().items()}
        save_tensors(path / WEIGHTS, quantize.encode(state, self.recipe.get("int8_weights", [])))
        write_json(path / META, {
            "format_version": FORMAT_VERSION,
            "kind": KIND,
            "config": self.config.model_dump(mode="json"),
            "preprocessing": self.preprocessor.state(),
            "compression": self.recipe,
            **MODELS.get(self.config.model.type)().save_extras(self.config.model, self.float_net),
        })
        return path

    @classmethod
    def from_dir(cls, path: Path, meta: dict[str, Any]) -> "CompressedModel":
        config = load_supervised_config(meta["config"])
        pre = Preprocessor(config).load_state(meta["preprocessing"])
        MODELS.get(config.model.type)().load_extras(config.model, meta, path)
        net = build_network(config.model, pre.inputs, pre.outputs)
        try:
            state = quantize.decode(load_tensors(path / WEIGHTS))
            net.load_state_dict(state)
        except Exception as exc:  # noqa: BLE001 - safetensors' own errors, or a mismatched state
            raise KilnError(f"{path / WEIGHTS} does not hold this compressed model's weights "
                            f"({type(exc).__name__}: {str(exc).splitlines()[0][:160] if str(exc) else ''})") from None
        return cls(config, pre, net.eval(), dict(meta.get("compression") or {}))
