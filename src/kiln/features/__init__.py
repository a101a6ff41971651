"""Feature types. A new type is one module defining a `Feature` subclass plus one import line here."""

from kiln.features.base import Feature, FeatureConfig
from kiln.registry import Registry

FEATURES: Registry[type[Feature]] = Registry("feature type")

from kiln.features import audio, binary, category, image, numeric, pretrained_tokenizer, text  # noqa: E402,F401  (registration)

__all__ = ["FEATURES", "Feature", "FeatureConfig", "build_feature"]


def build_feature(config: FeatureConfig, preprocessing=None) -> Feature:
    return FEATURES.get(config.type).variant(config)(config, preprocessing)
