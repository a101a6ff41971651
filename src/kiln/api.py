"""The Python API: `train`, `pretrain`, `load`, `cross_validate`. The CLI and the server are thin
layers over these. Each task (supervised, language_modeling, pretraining) registers itself in
kiln.tasks when its package is imported here; `train` dispatches on a config's `task:`."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pandas as pd

import kiln.lm  # noqa: F401  (registers the language_modeling task and its artefact)
import kiln.pretrain  # noqa: F401  (registers the pretraining task)
import kiln.supervised  # noqa: F401  (registers the supervised task)
import kiln.deploy.compressed  # noqa: F401  (registers the compressed supervised artefact)
import kiln.tuning  # noqa: F401  (registers the tune: config section)
from kiln.artifact import TrainedModel
from kiln.artifact import load as load_artifact
from kiln.config import raw_config, split_sections
from kiln.errors import KilnError
from kiln.supervised import Model
from kiln.supervised.task import cross_validate as cross_validate_supervised
from kiln.tasks import TASKS, load_task_config, task_name

__all__ = ["Model", "cross_validate", "load", "load_task_config", "pretrain", "train", "tune"]
DataArg = pd.DataFrame | str | Path | None
PRETRAINING_TASKS = ("pretraining", "language_modeling")


def train(
    config: Any,
    data: DataArg = None,
    output: str | Path | None = None,
    resume: str | Path | None = None,
    from_model: str | Path | None = None,
    progress: bool | str = False,
    callbacks: Sequence[Any] = (),
) -> Any:
    """Train from a config (path, dict or config object) and write a run directory; returns the model.

    `data` overrides `data.train` (a DataFrame or a path); `resume` continues a killed run in that
    directory; `from_model` continues training a saved model on new data with its saved
    preprocessing. `progress`: True (a bar on a terminal, a line per epoch elsewhere), False, or
    "bar" / "lines". `callbacks`: kiln.training.Callback objects or functions f(trainer, row).
    A `task: language_modeling` config returns a kiln.lm.LanguageModel, `task: pretraining` a
    kiln.pretrain.PretrainedEncoder. A `compress:` section (docs/compress.md) then compresses the trained
    model into RUN/compressed and adds the before/after table to RUN/report.html.
    """
    compress_spec = None
    if not hasattr(config, "model_dump"):
        raw = raw_config(config)
        _, sections = split_sections(raw)
        compress_spec = sections.get("compress")
        if compress_spec is not None and task_name(raw) != "supervised":
            raise KilnError(f"config error at compress: compression is for supervised models, not task '{task_name(raw)}'")
    config = load_task_config(config)
    model = TASKS.get(task_name(config)).train(config, data, output, resume, from_model, progress, callbacks)
    if compress_spec is not None:
        from kiln.deploy.compress import compress_run

        model.compression = compress_run(model.run_dir, compress_spec, progress)
    return model


def pretrain(config: Any, output: str | Path | None = None, resume: str | Path | None = None,
             progress: bool | str = False) -> Any:
    """Self-supervised pre-training: `task: pretraining` (masked-LM Transformer encoder) or
    `task: language_modeling` (GPT, next-token objective)."""
    name = task_name(config)
    if name not in PRETRAINING_TASKS:
        raise KilnError("kiln pretrain takes a `task: pretraining` config (masked-LM Transformer encoder) or a "
                        "`task: language_modeling` config (GPT, next-token objective)")
    return train(config, output=output, resume=resume, progress=progress)


RUNTIMES = ("torch", "onnx")


def load(path: str | Path, runtime: str = "torch") -> TrainedModel:
    """Load a saved model (a model directory or a run directory) of any task; `runtime="onnx"`: a file
    from `kiln export` (or a directory holding one, e.g. `kiln compress --engine onnxruntime`'s), run by
    onnxruntime behind kiln's preprocessing, with the same `predict` / `evaluate`."""
    if runtime not in RUNTIMES:
        raise KilnError(f"--runtime: unknown runtime '{runtime}'; valid: {', '.join(RUNTIMES)}")
    if runtime == "onnx":
        from kiln.deploy.export import load_onnx

        return load_onnx(path)
    return load_artifact(path)


def cross_validate(config: Any, folds: int = 5, data: DataArg = None, progress: bool | str = False) -> dict[str, Any]:
    """k-fold cross-validation of a supervised config: mean ± std of every metric over the folds."""
    name = task_name(config)
    if name != "supervised":
        raise KilnError(f"cross-validation is for supervised configs; this is a '{name}' config")
    return cross_validate_supervised(config, folds, data, progress)


def tune(config: Any, output: str | Path | None = None, resume: bool = False, progress: bool = False) -> Any:
    """Hyperparameter search as the config's `tune:` section says (docs/tuning.md). Returns a
    kiln.tuning.outputs.TuneResult: `summary`, `trials` (DataFrame), `best_config`, `best_model`,
    `directory` (trials.csv, best.yaml, best/, report.html, study.db). `resume=True` continues a
    killed search in `output`. `progress=True` prints one line per finished trial."""
    from kiln.tuning import tune as run_search

    return run_search(config, output=output, resume=resume, progress=progress)


# Importing the kiln.pretrain subpackage above made `kiln.pretrain` that module; the package's name is this
# function (kiln/__init__.py lists it), whichever way the API was imported.
kiln.pretrain = pretrain  # type: ignore[attr-defined]
