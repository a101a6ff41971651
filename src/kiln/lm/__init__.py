"""GPT-style language models: `task: language_modeling` configs, training, generation.

`kiln.train(lm_config)` returns a LanguageModel; `kiln.load(run_or_model_dir)` loads one back.
"""

from __future__ import annotations

from kiln.lm.api import train_lm
from kiln.lm.config import GPTConfig, LMConfig, load_lm_config
from kiln.lm.gpt import GPT, KVCache
from kiln.lm.model import LanguageModel

__all__ = ["GPT", "GPTConfig", "KVCache", "LMConfig", "LanguageModel", "load_lm_config", "train_lm"]
