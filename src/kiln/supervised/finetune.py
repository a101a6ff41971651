"""Fine-tuning from a pre-training run: `model.pretrained: RUN_DIR` in a classification or
regression config reuses the run's tokenizer and encoder weights under a new head.

Pre-training runs are read as files (model.json + weights.safetensors), so this task needs neither
the pre-training nor the language-modelling task's code."""

from __future__ import annotations

import logging
from typing import Any

import torch
from torch import nn

from kiln.artifact import WEIGHTS, kind_of, read_meta
from kiln.config import expand_path
from kiln.errors import KilnError
from kiln.io import load_tensors
from kiln.models.gpt import GPTConfig
from kiln.models.transformer import TransformerEncoderConfig

log = logging.getLogger("kiln")
# run kind → (the model type that fine-tunes it, its architecture, the weight-name prefix of the encoder)
SOURCES = {"pretrained_encoder": ("transformer", TransformerEncoderConfig, "encoder."),
           "language_model": ("gpt", GPTConfig, "")}


def run_meta(path: str) -> dict[str, Any]:
    """model.json of a pre-training run (masked-LM encoder or GPT language model)."""
    try:
        _, meta = read_meta(path, "model.pretrained")
    except KilnError:
        raise KilnError(f"model.pretrained: {path} is not a pre-training run (expected model/model.json and "
                        "model/weights.safetensors; make one with `kiln pretrain CONFIG -o DIR`)") from None
    if kind_of(meta) not in SOURCES:
        raise KilnError(f"model.pretrained: {path} holds a {kind_of(meta)} model, not a pre-trained one; pre-train with "
                        "`kiln pretrain` on a `task: pretraining` (masked LM) or `task: language_modeling` (GPT) config")
    return meta


def resolve_pretrained(config: Any) -> Any:
    """Copy the pre-trained architecture into config.model (so a saved fine-tuned model needs no
    pre-training run to load); refuse explicit settings that contradict it."""
    model = config.model
    path = getattr(model, "pretrained", None)
    if not path:
        return config
    path = expand_path(path, "model.pretrained")
    meta = run_meta(path)
    wanted, arch_class, _ = SOURCES[kind_of(meta)]
    if model.type != wanted:
        raise KilnError(f"model.pretrained: {path} is a {kind_of(meta).replace('_', ' ')} run; fine-tune it with "
                        f"model.type {wanted} (got {model.type})")
    arch = meta["config"]["model"]
    names = arch_class.shape_fields
    for name in names:
        if name in model.model_fields_set and getattr(model, name) != arch.get(name):
            raise KilnError(f"model.{name}: {getattr(model, name)} differs from the pre-trained model's {arch.get(name)} "
                            f"({path}); leave model.{name} out to use it")
    text = [f for f in config.input_features if f.type == "text"]
    if len(text) != 1:
        raise KilnError(f"model.pretrained needs exactly one text input feature to feed the pre-trained encoder; "
                        f"this config has {len(text)}")
    config.model = model.model_copy(update={name: arch[name] for name in names} | {"pretrained": path})
    config.model.model_fields_set.update(names)
    return config


def attach_tokenizer(config: Any, preprocessor: Any) -> dict[str, torch.Tensor] | None:
    """Give the text input the pre-trained tokenizer (it is then not refitted); return the
    pre-trained encoder weights that load_encoder_weights copies."""
    path = getattr(config.model, "pretrained", None)
    if not path:
        return None
    folder, meta = read_meta(path, "model.pretrained")
    _, _, prefix = SOURCES[kind_of(meta)]
    feature = next(f for f in preprocessor.inputs if f.type == "text")
    feature.load_state({"tokenizer": meta["tokenizer"]})
    weights = load_tensors(folder / WEIGHTS)
    return {k[len(prefix):]: v for k, v in weights.items() if k.startswith(prefix)}


def load_encoder_weights(net: nn.Module, config: Any, state: dict[str, torch.Tensor]) -> None:
    """Copy the pre-trained weights into the network's text encoder."""
    name = next(f.name for f in config.input_features if f.type == "text")
    target = net.encoders[net.input_names.index(name)]
    target = getattr(target, "gpt", target)
    state = {k: v for k, v in state.items() if not k.startswith("positions.")}
    missing, unexpected = target.load_state_dict(state, strict=False)
    missing = [k for k in missing if not k.startswith("positions.")]
    if missing or unexpected:
        raise KilnError(f"model.pretrained: the weights in {config.model.pretrained} do not fit this model "
                        f"(missing {missing[:3]}, unexpected {unexpected[:3]})")
    log.info("loaded pre-trained weights from %s", config.model.pretrained)
