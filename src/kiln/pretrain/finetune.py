"""Fine-tuning from a pre-training run: `model.pretrained: RUN_DIR` in a classification or
regression config reuses the run's tokenizer and encoder weights under a new head."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from torch import nn

from kiln.config.loader import expand_path
from kiln.errors import KilnError
from kiln.io import read_json
from kiln.pretrain.api import PretrainedEncoder

log = logging.getLogger("kiln")
ARCHITECTURE = {"transformer": ("d_model", "heads", "layers", "ff_dim"),
                "gpt": ("d_model", "heads", "layers", "block_size", "bias")}
KINDS = {"pretrained_encoder": "transformer", "language_model": "gpt"}  # run kind → the model type that fine-tunes it


def run_meta(path: str) -> dict[str, Any]:
    """model.json of a pre-training run (masked-LM encoder or GPT language model)."""
    root = Path(path)
    folder = root / "model" if (root / "model" / "model.json").is_file() else root
    if not (folder / "model.json").is_file() or not (folder / "weights.safetensors").is_file():
        raise KilnError(f"model.pretrained: {root} is not a pre-training run (expected model/model.json and "
                        "model/weights.safetensors; make one with `kiln pretrain CONFIG -o DIR`)")
    meta = read_json(folder / "model.json")
    if meta.get("kind") not in KINDS:
        raise KilnError(f"model.pretrained: {root} holds a supervised model, not a pre-trained one; pre-train with "
                        "`kiln pretrain` on a `task: pretraining` (masked LM) or `task: language_modeling` (GPT) config")
    return meta


def resolve(config: Any) -> Any:
    """Copy the pre-trained architecture into config.model (so a saved fine-tuned model needs no
    pre-training run to load); refuse explicit settings that contradict it."""
    model = config.model
    path = getattr(model, "pretrained", None)
    if not path:
        return config
    path = expand_path(path, "model.pretrained")
    meta = run_meta(path)
    wanted = KINDS[meta["kind"]]
    if model.type != wanted:
        raise KilnError(f"model.pretrained: {path} is a {meta['kind'].replace('_', ' ')} run; fine-tune it with "
                        f"model.type {wanted} (got {model.type})")
    arch = meta["config"]["model"]
    names = ARCHITECTURE[wanted]
    for name in names:
        if name in model.model_fields_set and getattr(model, name) != arch[name]:
            raise KilnError(f"model.{name}: {getattr(model, name)} differs from the pre-trained model's {arch[name]} "
                            f"({path}); leave model.{name} out to use it")
    text = [f for f in config.input_features if f.type == "text"]
    if len(text) != 1:
        raise KilnError(f"model.pretrained needs exactly one text input feature to feed the pre-trained encoder; "
                        f"this config has {len(text)}")
    config.model = model.model_copy(update={name: arch[name] for name in names} | {"pretrained": path})
    config.model.model_fields_set.update(names)
    return config


def attach_tokenizer(config: Any, preprocessor: Any) -> nn.Module | None:
    """Give the text input the pre-trained tokenizer (it is then not refitted); return the
    pre-trained network whose encoder weights load_encoder_weights copies."""
    path = getattr(config.model, "pretrained", None)
    if not path:
        return None
    if run_meta(path)["kind"] == "language_model":
        from kiln.lm.model import LanguageModel

        lm = LanguageModel.load(path)
        tokenizer, source = lm.tokenizer.state(), lm.net
    else:
        encoder = PretrainedEncoder.load(path)
        tokenizer, source = encoder.tokenizer, encoder.net.encoder
    feature = next(f for f in preprocessor.inputs if f.type == "text")
    feature.load_state({"tokenizer": tokenizer})
    return source


def load_encoder_weights(net: nn.Module, config: Any, source: nn.Module) -> None:
    """Copy the pre-trained weights into the network's text encoder."""
    name = next(f.name for f in config.input_features if f.type == "text")
    target = net.encoders[net.input_names.index(name)]
    target = getattr(target, "gpt", target)
    state = {k: v for k, v in source.state_dict().items() if not k.startswith("positions.")}
    missing, unexpected = target.load_state_dict(state, strict=False)
    missing = [k for k in missing if not k.startswith("positions.")]
    if missing or unexpected:
        raise KilnError(f"model.pretrained: the weights in {config.model.pretrained} do not fit this model "
                        f"(missing {missing[:3]}, unexpected {unexpected[:3]})")
    log.info("loaded pre-trained weights from %s", config.model.pretrained)
