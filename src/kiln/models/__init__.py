"""Model types. A new type is one module with a config class and a `build` function, plus one import line."""

from kiln.models.base import MODELS, ModelConfig, ModelType, build_network

from kiln.models import cnn, gpt, hf, linear, mlp, rnn, transformer  # noqa: E402,F401  (registration)

__all__ = ["MODELS", "ModelConfig", "ModelType", "build_network"]
