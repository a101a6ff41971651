"""Self-supervised pre-training (masked LM for Transformer encoders); supervised configs reuse the
result with `model.pretrained`."""

from kiln.pretrain.artifact import KIND, PretrainedEncoder
from kiln.pretrain.config import TASK, PretrainConfig, load_pretrain_config
from kiln.pretrain.task import pretrain
from kiln.tasks import TASKS, Task

TASKS.register(TASK)(Task(TASK, load_pretrain_config, pretrain, KIND, "masked-LM pre-training of a Transformer encoder"))

__all__ = ["PretrainConfig", "PretrainedEncoder", "load_pretrain_config", "pretrain"]
