"""`pretrain`: self-supervised pre-training. A `task: pretraining` config trains a Transformer
encoder with the masked-language-model objective; a `task: language_modeling` config trains a GPT
with the next-token objective (kiln.lm). The run's model/ is what `model.pretrained` names."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import torch
import yaml

from kiln.config.loader import config_task
from kiln.errors import KilnError
from kiln.evaluate.run_files import write_run_files
from kiln.io import load_tensors, read_json, save_tensors, write_json, write_text
from kiln.lm.train import LMTrainer, checkpoint_iteration, perplexity
from kiln.model import TrainedModel
from kiln.pretrain.config import PretrainConfig, load_pretrain_config
from kiln.pretrain.data import prepare_data
from kiln.pretrain.mlm import MaskedLanguageModel, MaskedSampler
from kiln.resume import check_resume
from kiln.runtime import configure_threads, seed_everything, select_device

KIND = "pretrained_encoder"
WEIGHTS, META = "weights.safetensors", "model.json"


def pretrain(config: Any, output: str | Path | None = None, resume: str | Path | None = None, progress: bool = False) -> Any:
    """Pre-train from a config (path, dict or config object); returns a PretrainedEncoder, or a
    kiln.lm.LanguageModel for a `task: language_modeling` (GPT) config."""
    from kiln.lm.config import load_lm_config

    task = config_task(config)
    if task == "language_modeling":
        from kiln.lm import train_lm

        return train_lm(load_lm_config(config), None, output, resume, None, progress)
    if task != "pretraining":
        raise KilnError("kiln pretrain takes a `task: pretraining` config (masked-LM Transformer encoder) or a "
                        "`task: language_modeling` config (GPT, next-token objective)")
    config = load_pretrain_config(config)
    run_dir = Path(resume) if resume is not None else Path(output or f"runs/pretrain-{time.strftime('%Y%m%d-%H%M%S')}")
    if resume is not None:
        check_resume(run_dir, config, load_pretrain_config)
    cfg = config.trainer
    configure_threads(cfg.threads)
    seed_everything(cfg.seed)
    saved = run_dir / "model" / META
    data = prepare_data(config, read_json(saved)["tokenizer"] if resume is not None and saved.is_file() else None)
    vocab = data.tokenizer.vocab_size
    net = MaskedLanguageModel(config.model, vocab, config.tokenizer.max_length)
    encoder = PretrainedEncoder(config, data.tokenizer.state(), net)
    run_dir.mkdir(parents=True, exist_ok=True)
    write_text(run_dir / "config.yaml", yaml.safe_dump(config.model_dump(mode="json"), sort_keys=False))
    ckpt = run_dir / "checkpoint"
    resuming = resume is not None and checkpoint_iteration(ckpt) is not None
    sampler = MaskedSampler(config.objective, net.mask_id, vocab, float((data.train != 0).sum()) / len(data.train))
    trainer = LMTrainer(net, cfg, select_device(cfg.device), ckpt, (), progress, sampler=sampler)
    history = trainer.fit(data.train, data.validation, resume=resuming)
    val = history[-1]["validation_loss"]
    encoder.metrics = {"validation": {"loss": val, "perplexity": perplexity(val),
                                      "masked_accuracy": masked_accuracy(net, data.validation, sampler, cfg)}}
    report = {"examples": {"train": len(data.train), "validation": len(data.validation)}, "sources": data.sources,
              "vocab_size": vocab, "parameters": net.num_parameters()}
    encoder.history = history
    write_run_files(run_dir, encoder, report, x="iteration", title="kiln pre-training run report")
    encoder.run_dir = run_dir
    return encoder


@torch.no_grad()
def masked_accuracy(net: MaskedLanguageModel, ids: torch.Tensor, sampler: MaskedSampler, cfg: Any) -> float:
    """Share of masked validation tokens whose original token is the top prediction."""
    net.eval()
    device = next(net.parameters()).device
    hits = total = 0
    for x, y in sampler.fixed(ids.to(device), cfg.eval_iters, cfg.batch_size, cfg.seed + 1):
        logits, _ = net(x, y)
        wanted = y[y != -100]
        hits += int((logits.argmax(-1) == wanted).sum())
        total += len(wanted)
    return hits / max(1, total)


class PretrainedEncoder(TrainedModel):
    """A pre-trained text encoder: its config, tokenizer state and MLM network."""

    def __init__(self, config: PretrainConfig, tokenizer: dict[str, Any], net: MaskedLanguageModel) -> None:
        super().__init__(config, net)
        self.tokenizer = tokenizer

    def save(self, path: str | Path) -> Path:
        path = Path(path)
        path.mkdir(parents=True, exist_ok=True)
        save_tensors(path / WEIGHTS, {k: v.detach().cpu() for k, v in self.net.state_dict().items()})
        write_json(path / META, {"kind": KIND, "objective": "mlm", "config": self.config.model_dump(mode="json"),
                                 "tokenizer": self.tokenizer})
        return path

    @staticmethod
    def _dir(path: str | Path, field: str) -> Path:
        root = Path(path)
        path = root / "model" if (root / "model" / META).is_file() else root
        if not (path / META).is_file() or not (path / WEIGHTS).is_file():
            raise KilnError(f"{field}: {root} is not a pre-training run (expected model/{META} and model/{WEIGHTS}; "
                            "make one with `kiln pretrain CONFIG -o DIR`)")
        return path

    @classmethod
    def load_meta(cls, path: str | Path, field: str = "model.pretrained") -> dict[str, Any]:
        meta = read_json(cls._dir(path, field) / META)
        if meta.get("kind") != KIND:
            kind = meta.get("kind", "supervised")
            hint = " (a GPT run generates text; fine-tuning takes a masked-LM encoder)" if kind == "language_model" else ""
            raise KilnError(f"{field}: {path} holds a {kind} model, not a pre-trained encoder{hint}; pre-train one with "
                            "`kiln pretrain` on a `task: pretraining` config")
        return meta

    @classmethod
    def load(cls, path: str | Path, field: str = "model.pretrained") -> "PretrainedEncoder":
        meta = cls.load_meta(path, field)
        path = cls._dir(path, field)
        config = load_pretrain_config(meta["config"])
        net = MaskedLanguageModel(config.model, _vocab(meta), config.tokenizer.max_length)
        net.load_state_dict(load_tensors(path / WEIGHTS))
        return cls(config, meta["tokenizer"], net)

    def predict_masked(self, text: str, top_k: int = 5) -> list[list[tuple[str, float]]]:
        """Top-k fillers for each `<mask>` in `text` (a quick look at what the encoder learnt)."""
        from kiln.features.tokenizers import tokenizer_from_state

        tok = tokenizer_from_state(self.tokenizer)
        parts = text.split("<mask>")
        ids: list[int] = []
        slots = []
        for i, part in enumerate(parts):
            ids += tok.encode(part)
            if i < len(parts) - 1:
                slots.append(len(ids))
                ids.append(self.net.mask_id)
        self.net.eval()
        with torch.no_grad():
            logits, _ = self.net(torch.tensor([ids]))
        out = []
        for slot in slots:
            probs = logits[0, slot, : self.net.mask_id].softmax(-1)
            top = probs.topk(top_k)
            out.append([(tok.vocab[int(i)], float(p)) for p, i in zip(top.values, top.indices)])
        return out


def _vocab(meta: dict[str, Any]) -> int:
    from kiln.features.tokenizers import tokenizer_from_state

    return tokenizer_from_state(meta["tokenizer"]).vocab_size
