"""The network every model type builds: per-feature encoders → concatenate → hidden layers → heads."""

from __future__ import annotations

import copy
from collections.abc import Sequence
from pathlib import Path
from typing import Annotated, Any, ClassVar, Literal

import torch
from pydantic import Field
from torch import nn

from kiln.config import Section
from kiln.errors import KilnError
from kiln.features import Feature
from kiln.models.augment import GaussianNoise, ImageAugment, SpectrogramAugment
from kiln.models.budget import TRAINING_COPIES, build_within_memory
from kiln.models.encoders import FlattenEncoder, activation
from kiln.models.init import init_weights
from kiln.registry import Registry


class ModelConfig(Section):
    """Fields shared by all model types."""

    type: str
    hidden: list[Annotated[int, Field(ge=1, le=1_000_000)]] = []  # trunk layer widths after the encoders
    activation: Literal["relu", "sigmoid", "tanh", "gelu", "leaky_relu", "elu", "silu"] = "relu"
    dropout: float = Field(0.0, ge=0.0, lt=1.0)  # trunk dropout
    init: Literal["xavier", "gaussian", "default"] = "default"
    init_std: float = Field(0.02, gt=0.0, le=10.0)


class ModelType:
    """A model type: its config and how it encodes text and image inputs."""

    Config: ClassVar[type[ModelConfig]]
    name: ClassVar[str]

    def text_encoder(self, cfg: Any, info: dict[str, Any]) -> nn.Module:
        raise KilnError(f"model type '{self.name}' does not take text inputs; use {_fits('text')}")

    def ngram_encoder(self, cfg: Any, info: dict[str, Any]) -> nn.Module:
        raise KilnError(ngram_refusal(self.name))

    def image_encoder(self, cfg: Any, info: dict[str, Any]) -> nn.Module:
        raise KilnError(f"model type '{self.name}' does not take image inputs; use {_fits('image')}")

    def audio_encoder(self, cfg: Any, info: dict[str, Any]) -> nn.Module:
        raise KilnError(f"model type '{self.name}' does not take audio inputs; use {_fits('audio')}")

    def check(self, inputs: Sequence[Feature]) -> None:
        """Refuse input sets this model type cannot model."""

    def configure(self, config: Any) -> None:
        """Adjust a run config as it is validated (hf: text inputs use the checkpoint's tokenizer)."""

    def save_extras(self, cfg: Any, net: nn.Module) -> dict[str, Any]:
        """Extra model.json entries a saved model needs (hf: architecture, base checkpoint and its hash)."""
        return {}

    def load_extras(self, cfg: Any, meta: dict[str, Any], path: Path) -> None:
        """Check and prepare, before a saved model's network is rebuilt (hf: verify the base checkpoint)."""


MODELS: Registry[type[ModelType]] = Registry("model type")


def ngram_refusal(model: str) -> str:
    """The one-line error for `encoder: ngram` text inputs under a model type that cannot take them, or ''."""
    if model in MODELS and MODELS.get(model).ngram_encoder is not ModelType.ngram_encoder:
        return ""
    return f"model type '{model}' cannot take encoder: ngram text inputs; use {_fits('ngram')}, or encoder: sequence"


def _fits(kind: str) -> str:
    method = f"{kind}_encoder"
    return ", ".join(n for n in MODELS.names() if getattr(MODELS.get(n), method) is not getattr(ModelType, method))


class ScalarEncoder(nn.Module):
    """Numeric/binary inputs: a (batch, 1) column, with optional Gaussian noise in training."""

    def __init__(self, noise: float = 0.0) -> None:
        super().__init__()
        self.output_dim = 1
        self.noise = GaussianNoise(noise) if noise > 0 else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x if self.noise is None else self.noise(x)


class CategoryEncoder(nn.Module):
    """Category ids → one-hot (small vocabularies) or a learnt embedding."""

    def __init__(self, cardinality: int, embedding_dim: int | None = None) -> None:
        super().__init__()
        self.cardinality = cardinality
        if embedding_dim is None and cardinality > 32:
            embedding_dim = 16
        self.embedding = nn.Embedding(cardinality, embedding_dim) if embedding_dim else None
        self.output_dim = embedding_dim or cardinality
        # one-hot rows by indexing: one operation where one_hot(x).float() takes four (its range check among them)
        self.register_buffer("one_hot", None if embedding_dim else torch.eye(cardinality), persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.embedding is not None:
            return self.embedding(x)
        return self.one_hot[x]


class AugmentedImage(nn.Module):
    """Image augmentation (training only) in front of an image encoder."""

    def __init__(self, encoder: nn.Module, augmentation: dict[str, Any]) -> None:
        super().__init__()
        self.augment = ImageAugment(**augmentation)
        self.encoder = encoder
        self.output_dim = encoder.output_dim

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.encoder(self.augment(x))


class AugmentedAudio(nn.Module):
    """Spectrogram augmentation (training only) in front of an audio encoder."""

    def __init__(self, encoder: nn.Module, augmentation: dict[str, Any]) -> None:
        super().__init__()
        self.augment = SpectrogramAugment(**augmentation)
        self.encoder = encoder
        self.output_dim = encoder.output_dim

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.encoder(self.augment(x))


class Network(nn.Module):
    """Encoders (one per input) → concat → MLP trunk → one linear head per output. Returns logits."""

    def __init__(self, encoders: dict[str, nn.Module], hidden: list[int], act: str, dropout: float, heads: dict[str, int]) -> None:
        super().__init__()
        self.input_names = list(encoders)
        self.output_names = list(heads)
        self.encoders = nn.ModuleList(encoders.values())
        width = sum(e.output_dim for e in self.encoders)
        layers: list[nn.Module] = []
        for size in hidden:
            layers += [nn.Linear(width, size), activation(act)]
            if dropout > 0:
                layers.append(nn.Dropout(dropout))
            width = size
        self.trunk = nn.Sequential(*layers)
        self.heads = nn.ModuleList(nn.Linear(width, dim) for dim in heads.values())

    def forward(self, inputs: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        encoded = [enc(inputs[name]) for name, enc in zip(self.input_names, self.encoders)]
        hidden = self.trunk(torch.cat(encoded, dim=-1) if len(encoded) > 1 else encoded[0])
        return {name: head(hidden) for name, head in zip(self.output_names, self.heads)}

    def with_encoders(self, replace: dict[str, nn.Module]) -> "Network":
        """A network sharing this one's trunk, heads and other encoders, with the inputs named in
        `replace` encoded by the given modules instead (e.g. a frozen encoder's cached vectors)."""
        view = copy.copy(self)
        view._modules = dict(self._modules)
        view.encoders = nn.ModuleList(replace.get(n, e) for n, e in zip(self.input_names, self.encoders))
        return view


def build_encoder(model: ModelType, cfg: ModelConfig, feature: Feature) -> nn.Module:
    info = feature.describe()
    if feature.type in ("numeric", "binary"):
        return ScalarEncoder(info.get("noise", 0.0))
    if feature.type == "category":
        return CategoryEncoder(info["cardinality"], info["embedding_dim"])
    if feature.type == "text":
        return model.ngram_encoder(cfg, info) if info.get("encoder") == "ngram" else model.text_encoder(cfg, info)
    if feature.type == "image":
        encoder = model.image_encoder(cfg, info)
        aug = info.get("augmentation") or {}
        return AugmentedImage(encoder, aug) if any(aug.values()) else encoder
    if feature.type == "audio":
        encoder = model.audio_encoder(cfg, info)
        aug = info.get("augmentation") or {}
        active = any(aug.get(k) for k in ("time_shift", "gain_db", "noise", "freq_mask", "time_mask"))
        return AugmentedAudio(encoder, aug) if active else encoder
    raise KilnError(f"model type '{model.name}' has no encoder for {feature.type} feature '{feature.name}'")


def build_network(cfg: ModelConfig, inputs: Sequence[Feature], outputs: Sequence[Feature],
                  copies: int = TRAINING_COPIES) -> Network:
    """Build the torch network for fitted input and output features (refused first if `copies` of it
    cannot fit in memory: 4 to train, 1 to load)."""
    model = MODELS.get(cfg.type)()
    model.check(inputs)

    def make() -> Network:
        encoders = {f.name: build_encoder(model, cfg, f) for f in inputs}
        net = Network(encoders, list(cfg.hidden), cfg.activation, cfg.dropout, {f.name: f.output_dim for f in outputs})
        init_weights(net, cfg.init, cfg.init_std)
        return net

    return build_within_memory(make, f"the {cfg.type} network", copies)


def flatten_image(info: dict[str, Any]) -> nn.Module:
    return FlattenEncoder(tuple(info["shape"]))


def require(inputs: Sequence[Feature], kind: str, model: str, *more: str) -> None:
    kinds = (kind, *more)
    if not any(f.type in kinds for f in inputs):
        types = sorted({f.type for f in inputs})
        wanted = " or ".join(f"{'an' if k[0] in 'aeiou' else 'a'} {k} input feature" for k in kinds)
        raise KilnError(f"model type '{model}' needs {wanted}; this config has {types}")
