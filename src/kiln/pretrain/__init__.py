"""Self-supervised pre-training (masked-LM for Transformer encoders) and its reuse for fine-tuning."""

from kiln.pretrain.api import PretrainedEncoder, pretrain

__all__ = ["PretrainedEncoder", "pretrain"]
