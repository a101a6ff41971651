"""The language-modelling task: a text file → a GPT trained on next-token prediction (random token
blocks, kiln.training.sampled) in a run directory (model/, metrics.json, history.csv, loss curves,
report.html, config.yaml, checkpoint/)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from kiln.errors import KilnError
from kiln.lm.artifact import LanguageModel
from kiln.lm.config import load_lm_config
from kiln.lm.data import BlockSampler, prepare_data
from kiln.models.budget import build_within_memory
from kiln.models.gpt import GPT
from kiln.training import Run, Trainer, load_run
from kiln.training.distributed import check_even_batches, in_worker, is_main, launch_run
from kiln.training.sampled import SampledTask


def train_lm(
    config: Any,
    data: str | Path | None = None,
    output: str | Path | None = None,
    resume: str | Path | None = None,
    from_model: str | Path | None = None,
    progress: bool | str = False,
    callbacks: Sequence[Any] = (),
) -> LanguageModel:
    """Train a GPT from an LMConfig (path, dict or LMConfig); `data` overrides data.train (a text
    file); `resume` continues a killed run in that directory from its last checkpoint."""
    config = load_lm_config(config)
    if from_model is not None:
        raise KilnError("--from / from_model is not supported for language models yet; use --resume RUN_DIR to continue a run")
    if data is not None:
        if not isinstance(data, (str, Path)):
            raise KilnError("for a language model, data must be the path of a plain text file")
        config = config.model_copy(update={"data": config.data.model_copy(update={"train": str(data)})})
    name = f"lm-{Path(config.data.train or 'lm').stem}"
    if config.backend.type != "local" and not in_worker():
        check_even_batches(config.backend, config.trainer.batch_size)
        run_dir = Run(config, output, resume, name, load_lm_config).dir  # checks a resume first
        launch_run(config, run_dir, resume is not None, _worker_train_lm, (progress,), callbacks)
        return load_run(LanguageModel, run_dir)
    main = is_main()
    run = Run(config, output, resume, name, load_lm_config)
    cfg = config.trainer
    device = run.start(cfg)
    saved = run.saved_meta()
    data_ = prepare_data(config, saved["tokenizer"] if saved else None)
    net = build_within_memory(lambda: GPT(config.model, data_.tokenizer.vocab_size), "the GPT model")
    model = LanguageModel(config, data_.tokenizer, net)
    if main:  # data-parallel workers other than rank 0 write nothing
        run.create()
        if saved is None:
            model.save(run.model_dir)  # the tokenizer is fixed from here on (resume reuses it)
    trainer = Trainer(net, cfg, device, run.checkpoint_dir, callbacks, progress)
    task = SampledTask(BlockSampler(net.block_size), data_.train, data_.validation, cfg)
    model.history = trainer.fit(task, resume=run.resume_from_checkpoint)
    model.metrics = task.final_metrics(trainer)
    if not main:
        return model
    report = {
        "train_tokens": len(data_.train),
        "validation_tokens": len(data_.validation),
        "vocab_size": data_.tokenizer.vocab_size,
        "parameters": net.num_parameters(),
        "tokens_per_iteration": cfg.batch_size * cfg.gradient_accumulation * config.model.block_size,
        "stop_reason": trainer.stop_reason,
    }
    if trainer.world > 1:
        report["backend"] = {"type": config.backend.type, "workers": trainer.world}
    run.finish(model, report, x="iteration", title="kiln language model run report")
    return model


def _worker_train_lm(config: Any, where: dict[str, str], progress: bool | str) -> None:
    """One data-parallel worker (kiln.training.distributed.launch_run): the local training path."""
    train_lm(config, output=where.get("output"), resume=where.get("resume"), progress=progress)
