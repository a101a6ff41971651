"""`hf`: fine-tune a local Hugging Face encoder checkpoint (BERT-style) under kiln's trunk and heads,
fully or through a LoRA adapter (peft). Needs the optional extra kiln[hf]; see docs/pretrained.md."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, field_validator
from torch import nn

from kiln.config import expand_path
from kiln.errors import KilnError
from kiln.features import Feature
from kiln.hf.checkpoint import weight_files, weights_sha256
from kiln.hf.encoder import HFTextEncoder, build_encoder
from kiln.models.base import MODELS, ModelConfig, ModelType, require

ARCHITECTURE, BASE = "hf_architecture", "base_checkpoint"


class LoraConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")
    type: Literal["lora"]
    r: int = Field(8, ge=1)
    alpha: float = Field(16, gt=0)
    dropout: float = Field(0.0, ge=0.0, lt=1.0)
    target_modules: list[str] = Field(default_factory=lambda: ["query", "value"], min_length=1)


class HFConfig(ModelConfig):
    type: Literal["hf"]
    path: str  # a checkpoint directory written by save_pretrained; ${VARS} and ~ are expanded
    pooling: Literal["cls", "mean", "pooler"] = "cls"  # first token, masked mean, or the checkpoint's pooler
    dropout: float = 0.1  # on the pooled vector, and after each hidden layer
    init: Literal["default"] = "default"  # pre-trained weights are never re-initialised
    adapter: LoraConfig | None = None
    _architecture: dict[str, Any] | None = PrivateAttr(default=None)  # set when a saved full model loads
    _frozen: bool = PrivateAttr(default=False)  # trainer.freeze: [encoder]: train the head on cached pooled vectors

    @field_validator("path")
    @classmethod
    def _expand(cls, value: str) -> str:
        try:
            return os.path.abspath(expand_path(value, "model.path"))
        except KilnError:
            return value  # an unset variable is reported when the checkpoint is read


@MODELS.register("hf")
class HF(ModelType):
    name = "hf"
    Config = HFConfig

    def configure(self, config: Any) -> None:
        texts = [(i, f) for i, f in enumerate(config.input_features) if f.type == "text"]
        if len(texts) != 1:
            raise ValueError(f"model type 'hf' needs exactly one text input feature for the checkpoint; this config has {len(texts)}")
        i, feature = texts[0]
        if feature.tokenizer != "pretrained" and "tokenizer" in feature.model_fields_set:
            raise ValueError(f"input_features[{i}].tokenizer: model type 'hf' tokenizes with the checkpoint's own tokenizer; "
                             f"remove tokenizer: {feature.tokenizer}")
        if feature.tokenizer_path not in (None, config.model.path):
            raise ValueError(f"input_features[{i}].tokenizer_path must be the checkpoint, model.path ({config.model.path})")
        feature.tokenizer, feature.tokenizer_path = "pretrained", config.model.path
        frozen = "encoder" in getattr(config.trainer, "freeze", ())
        if frozen and config.model.adapter is not None:
            raise ValueError("trainer.freeze: [encoder] trains only the head, a LoRA adapter trains the encoder: "
                             "remove one of trainer.freeze: [encoder] and model.adapter")
        config.model._frozen = frozen

    def check(self, inputs: Sequence[Feature]) -> None:
        require(inputs, "text", self.name)

    def text_encoder(self, cfg: HFConfig, info: dict[str, Any]) -> nn.Module:
        return build_encoder(cfg, info)

    def save_extras(self, cfg: HFConfig, net: nn.Module) -> dict[str, Any]:
        encoder = _encoder(net)
        if encoder.saved is not None:  # a LoRA adapter or a frozen encoder: the base stays in its checkpoint
            return {BASE: encoder.base}
        return {ARCHITECTURE: encoder.backbone.config.to_dict()}

    def load_extras(self, cfg: HFConfig, meta: dict[str, Any], path: Path) -> None:
        cfg._frozen = cfg.adapter is None and BASE in meta  # how it was saved decides how it loads
        if cfg.adapter is None and not cfg._frozen:
            cfg._architecture = meta.get(ARCHITECTURE)  # a full model loads without its base checkpoint
            return
        kind, held = ("LoRA model", "adapter and head") if cfg.adapter is not None else ("frozen-encoder model", "head")
        base = meta.get(BASE) or {}
        root = Path(base.get("path") or cfg.path)
        if not root.is_dir() or not weight_files(root):
            raise KilnError(f"the base checkpoint of the {kind} {path} is missing: {root} (the model holds only "
                            f"{held} weights; restore the checkpoint there)")
        found, recorded = weights_sha256(root), base.get("sha256") or {}
        if found != recorded:
            changed = sorted(k for k in {*found, *recorded} if found.get(k) != recorded.get(k))
            raise KilnError(f"the base checkpoint of the {kind} {path} has changed: {root} ({', '.join(changed)} "
                            f"differ from the sha256 recorded at training); restore the original checkpoint, or retrain")


def _encoder(net: nn.Module) -> Any:
    return next(m for m in net.modules() if isinstance(m, HFTextEncoder))
