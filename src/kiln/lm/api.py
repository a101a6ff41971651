"""`train_lm`: an LMConfig → a run directory (model/, metrics.json, history.csv, loss_curves.png,
report.html, config.yaml, checkpoint/) and a LanguageModel. `kiln.train` dispatches here."""

from __future__ import annotations

import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import yaml

from kiln.resume import check_resume
from kiln.errors import KilnError
from kiln.io import read_json, write_text
from kiln.lm.config import LMConfig, load_lm_config
from kiln.lm.data import prepare_data
from kiln.lm.gpt import GPT
from kiln.lm.model import META, LanguageModel
from kiln.lm.train import LMCallback, LMTrainer, checkpoint_iteration
from kiln.runtime import configure_threads, seed_everything, select_device


def _run_dir(output: str | Path | None, config: LMConfig) -> Path:
    if output is not None:
        return Path(output)
    stem = Path(config.data.train or "lm").stem
    return Path("runs") / f"lm-{stem}-{time.strftime('%Y%m%d-%H%M%S')}"


def train_lm(
    config: Any,
    data: str | Path | None = None,
    output: str | Path | None = None,
    resume: str | Path | None = None,
    from_model: str | Path | None = None,
    progress: bool = False,
    callbacks: Sequence[LMCallback] = (),
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
    run_dir = Path(resume) if resume is not None else _run_dir(output, config)
    if resume is not None:
        check_resume(run_dir, config, load_lm_config)
    cfg = config.trainer
    configure_threads(cfg.threads)
    seed_everything(cfg.seed)

    saved_meta = run_dir / "model" / META
    tokenizer_state = read_json(saved_meta)["tokenizer"] if resume is not None and saved_meta.is_file() else None
    data_ = prepare_data(config, tokenizer_state)
    net = GPT(config.model, data_.tokenizer.vocab_size)
    model = LanguageModel(config, data_.tokenizer, net)
    model.run_dir = run_dir

    run_dir.mkdir(parents=True, exist_ok=True)
    write_text(run_dir / "config.yaml", yaml.safe_dump(config.model_dump(mode="json"), sort_keys=False))
    if tokenizer_state is None:
        model.save(run_dir / "model")  # the tokenizer is fixed from here on (resume reuses it)
    ckpt = run_dir / "checkpoint"
    resuming = resume is not None and checkpoint_iteration(ckpt) is not None
    trainer = LMTrainer(net, cfg, select_device(cfg.device), ckpt, callbacks, progress)
    model.history = trainer.fit(data_.train, data_.validation, resume=resuming)
    model.metrics = trainer.final_metrics(data_.train)
    report = {
        "train_tokens": len(data_.train),
        "validation_tokens": len(data_.validation),
        "vocab_size": data_.tokenizer.vocab_size,
        "parameters": net.num_parameters(),
        "tokens_per_iteration": cfg.batch_size * cfg.gradient_accumulation * config.model.block_size,
    }
    _write_run(run_dir, model, report)
    return model


def _write_run(run_dir: Path, model: LanguageModel, report: dict[str, Any]) -> None:
    from kiln.evaluate.run_files import write_run_files

    write_run_files(run_dir, model, report, x="iteration", title="kiln language model run report")
