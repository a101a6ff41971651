"""Fine-tuning from a pre-training run: `model.pretrained: RUN_DIR` in a classification or
regression config reuses the run's tokenizer and encoder weights under a new head."""

from __future__ import annotations

import logging
from typing import Any

from torch import nn

from kiln.config.loader import expand_path
from kiln.errors import KilnError
from kiln.pretrain.api import PretrainedEncoder

log = logging.getLogger("kiln")
ARCHITECTURE = ("d_model", "heads", "layers", "ff_dim")


def resolve(config: Any) -> Any:
    """Copy the pre-trained architecture into config.model (so a saved fine-tuned model needs no
    pre-training run to load); refuse explicit settings that contradict it."""
    model = config.model
    path = getattr(model, "pretrained", None)
    if not path:
        return config
    path = expand_path(path, "model.pretrained")
    meta = PretrainedEncoder.load_meta(path)
    arch = meta["config"]["model"]
    for name in ARCHITECTURE:
        if name in model.model_fields_set and getattr(model, name) != arch[name]:
            raise KilnError(f"model.{name}: {getattr(model, name)} differs from the pre-trained encoder's {arch[name]} "
                            f"({path}); leave model.{name} out to use it")
    update = {name: arch[name] for name in ARCHITECTURE} | {"pretrained": path}
    text = [f for f in config.input_features if f.type == "text"]
    if len(text) != 1:
        raise KilnError(f"model.pretrained needs exactly one text input feature to feed the pre-trained encoder; "
                        f"this config has {len(text)}")
    config.model = model.model_copy(update=update)
    for name in ARCHITECTURE:
        config.model.model_fields_set.add(name)
    return config


def attach_tokenizer(config: Any, preprocessor: Any) -> PretrainedEncoder | None:
    """Give the text input the pre-trained tokenizer (it is then not refitted); return the encoder."""
    path = getattr(config.model, "pretrained", None)
    if not path:
        return None
    encoder = PretrainedEncoder.load(path)
    feature = next(f for f in preprocessor.inputs if f.type == "text")
    feature.load_state({"tokenizer": encoder.tokenizer})
    return encoder


def load_encoder_weights(net: nn.Module, config: Any, encoder: PretrainedEncoder) -> None:
    """Copy the pre-trained encoder's weights into the network's text encoder."""
    name = next(f.name for f in config.input_features if f.type == "text")
    target = net.encoders[net.input_names.index(name)]
    state = {k: v for k, v in encoder.net.encoder.state_dict().items() if not k.startswith("positions.")}
    missing, unexpected = target.load_state_dict(state, strict=False)
    missing = [k for k in missing if not k.startswith("positions.")]
    if missing or unexpected:
        raise KilnError(f"model.pretrained: the encoder in {config.model.pretrained} does not fit this model "
                        f"(missing {missing[:3]}, unexpected {unexpected[:3]})")
    log.info("loaded pre-trained encoder from %s", config.model.pretrained)
