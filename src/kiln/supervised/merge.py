"""`kiln merge-adapter`: fold a LoRA adapter into its base weights (peft merge_and_unload) and save a
plain `hf` model that loads and predicts without peft and without the base checkpoint."""

from __future__ import annotations

import shutil
from pathlib import Path

from kiln.artifact import META, WEIGHTS, model_dir as resolve_model_dir
from kiln.errors import KilnError
from kiln.models.hf import _encoder
from kiln.supervised.artifact import Model


def merge_adapter(model_dir: str | Path, output: str | Path) -> Path:
    """Write the merged model to `output` (a model directory) and return its path."""
    source = resolve_model_dir(model_dir)
    output = Path(output)
    if output.exists() and (output.resolve() == source.resolve() or any(output.iterdir())):
        raise KilnError(f"--output {output} must be a new or empty directory (it would overwrite a model)")
    model = Model.load(source)  # checks the base checkpoint against its recorded sha256
    cfg = model.config.model
    if cfg.type != "hf" or getattr(cfg, "adapter", None) is None:
        raise KilnError(f"{source} has no LoRA adapter to merge (model type {cfg.type}, adapter: none)")
    _encoder(model.net).merge()
    config = model.config.model_copy(update={"model": cfg.model_copy(update={"adapter": None})})
    Model(config, model.preprocessor, model.net).save(output)
    for extra in source.iterdir():  # e.g. stats.json, the reference for drift monitoring
        if extra.is_file() and extra.name not in (META, WEIGHTS):
            shutil.copy2(extra, output / extra.name)
    return output
