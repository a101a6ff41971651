"""The pre-training task: unlabelled text → a Transformer encoder trained with the masked-language-
model objective (masked sentences, kiln.training.sampled) in a run directory whose model/ is what
`model.pretrained` names in a classification config."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch

from kiln.errors import KilnError
from kiln.pretrain.artifact import PretrainedEncoder
from kiln.pretrain.config import load_pretrain_config
from kiln.pretrain.data import prepare_data
from kiln.models.budget import build_within_memory
from kiln.pretrain.mlm import MaskedLanguageModel, MaskedSampler
from kiln.training import Run, Trainer, load_run
from kiln.training.distributed import check_even_batches, in_worker, is_main, launch_run
from kiln.training.sampled import SampledTask, perplexity


def pretrain(
    config: Any,
    data: str | Path | None = None,
    output: str | Path | None = None,
    resume: str | Path | None = None,
    from_model: str | Path | None = None,
    progress: bool | str = False,
    callbacks: Sequence[Any] = (),
) -> PretrainedEncoder:
    """Masked-LM pre-training from a `task: pretraining` config; returns a PretrainedEncoder."""
    if data is not None or from_model is not None:
        raise KilnError("pre-training reads its text from data.train in the config; --data and --from do not apply")
    config = load_pretrain_config(config)
    if config.backend.type != "local" and not in_worker():
        check_even_batches(config.backend, config.trainer.batch_size)
        run_dir = Run(config, output, resume, "pretrain", load_pretrain_config).dir  # checks a resume first
        launch_run(config, run_dir, resume is not None, _worker_pretrain, (progress,), callbacks)
        return load_run(PretrainedEncoder, run_dir)
    main = is_main()
    run = Run(config, output, resume, "pretrain", load_pretrain_config)
    cfg = config.trainer
    device = run.start(cfg)
    saved = run.saved_meta()
    data_ = prepare_data(config, saved["tokenizer"] if saved else None)
    vocab = data_.tokenizer.vocab_size
    net = build_within_memory(lambda: MaskedLanguageModel(config.model, vocab, config.tokenizer.max_length), "the masked-LM encoder")
    encoder = PretrainedEncoder(config, data_.tokenizer.state(), net)
    if main:  # data-parallel workers other than rank 0 write nothing
        run.create()
        if saved is None:
            encoder.save(run.model_dir)  # the tokenizer is fixed from here on (resume reuses it)
    sampler = MaskedSampler(config.objective, net.mask_id, vocab, float((data_.train != 0).sum()) / len(data_.train))
    trainer = Trainer(net, cfg, device, run.checkpoint_dir, callbacks, progress)
    task = SampledTask(sampler, data_.train, data_.validation, cfg)
    encoder.history = trainer.fit(task, resume=run.resume_from_checkpoint)
    if not main:
        return encoder
    val = task.estimate_loss(trainer, task.validation_batches)
    encoder.metrics = {"validation": {"loss": val, "perplexity": perplexity(val),
                                      "masked_accuracy": masked_accuracy(net, task.validation_batches)}}
    report = {"examples": {"train": len(data_.train), "validation": len(data_.validation)}, "sources": data_.sources,
              "vocab_size": vocab, "parameters": net.num_parameters(), "stop_reason": trainer.stop_reason}
    if trainer.world > 1:
        report["backend"] = {"type": config.backend.type, "workers": trainer.world}
    run.finish(encoder, report, x="iteration", title="kiln pre-training run report")
    return encoder


def _worker_pretrain(config: Any, where: dict[str, str], progress: bool | str) -> None:
    """One data-parallel worker (kiln.training.distributed.launch_run): the local pre-training path."""
    pretrain(config, output=where.get("output"), resume=where.get("resume"), progress=progress)


@torch.no_grad()
def masked_accuracy(net: MaskedLanguageModel, batches: list[tuple[torch.Tensor, torch.Tensor]]) -> float:
    """Share of masked validation tokens whose original token is the top prediction."""
    net.eval()
    hits = total = 0
    for x, y in batches:
        logits, _ = net(x, y)
        wanted = y[y != -100]
        hits += int((logits.argmax(-1) == wanted).sum())
        total += len(wanted)
    return hits / max(1, total)
