"""GPT-style language models: `task: language_modeling` configs, training, generation.

`kiln.train(lm_config)` returns a LanguageModel; `kiln.load(run_or_model_dir)` loads one back.
"""

from __future__ import annotations

from kiln.lm.artifact import KIND, LanguageModel
from kiln.lm.config import TASK, LMConfig, load_lm_config
from kiln.lm.task import train_lm
from kiln.models.gpt import GPT, GPTConfig, KVCache
from kiln.tasks import TASKS, Task

TASKS.register(TASK)(Task(TASK, load_lm_config, train_lm, KIND, "GPT next-token training on a text file"))

__all__ = ["GPT", "GPTConfig", "KVCache", "LMConfig", "LanguageModel", "load_lm_config", "train_lm"]
