"""A pre-trained text encoder: its config, tokenizer state and masked-LM network, saved as a
pickle-free directory. `model.pretrained: RUN_DIR` in a classification config fine-tunes it."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from kiln.artifact import ARTIFACTS, FORMAT_VERSION, META, WEIGHTS, TrainedModel, load_weights, read_meta
from kiln.errors import KilnError
from kiln.features.tokenizers import tokenizer_from_state
from kiln.io import save_tensors, write_json
from kiln.pretrain.config import PretrainConfig, load_pretrain_config
from kiln.models.budget import LOADING_COPIES, build_within_memory
from kiln.pretrain.mlm import MaskedLanguageModel

KIND = "pretrained_encoder"


@ARTIFACTS.register(KIND)
class PretrainedEncoder(TrainedModel):
    """A pre-trained text encoder: its config, tokenizer state and MLM network."""

    kind = KIND

    def __init__(self, config: PretrainConfig, tokenizer: dict[str, Any], net: MaskedLanguageModel) -> None:
        super().__init__(config, net)
        self.tokenizer = tokenizer

    def save(self, path: str | Path) -> Path:
        path = Path(path)
        path.mkdir(parents=True, exist_ok=True)
        save_tensors(path / WEIGHTS, {k: v.detach().cpu() for k, v in self.net.state_dict().items()})
        write_json(path / META, {"format_version": FORMAT_VERSION, "kind": KIND, "objective": "mlm", "config": self.config.model_dump(mode="json"),
                                 "tokenizer": self.tokenizer, "logit_scale": self.net.logit_scale})
        return path

    @classmethod
    def load(cls, path: str | Path, field: str = "model directory") -> "PretrainedEncoder":
        folder, meta = read_meta(path, field)
        if meta.get("kind") != KIND:
            raise KilnError(f"{field}: {path} holds a {meta.get('kind', 'supervised')} model, not a pre-trained encoder; "
                            "pre-train one with `kiln pretrain` on a `task: pretraining` config")
        return cls.from_dir(folder, meta)

    @classmethod
    def from_dir(cls, path: Path, meta: dict[str, Any]) -> "PretrainedEncoder":
        config = load_pretrain_config(meta["config"])
        try:
            vocab = tokenizer_from_state(meta["tokenizer"]).vocab_size
        except (KeyError, TypeError, ValueError) as exc:
            raise KilnError(f"{path / META}: the tokenizer state is invalid ({type(exc).__name__}: {exc})") from None
        scale = float(meta.get("logit_scale", config.model.d_model ** -0.5))  # runs saved before the head had a scale
        net = build_within_memory(lambda: MaskedLanguageModel(config.model, vocab, config.tokenizer.max_length, scale),
                                  f"the masked-LM encoder in {path}", LOADING_COPIES)
        net.load_state_dict(load_weights(path, net))
        return cls(config, meta["tokenizer"], net)

    def predict_masked(self, text: str, top_k: int = 5) -> list[list[tuple[str, float]]]:
        """Top-k fillers for each `<mask>` in `text` (a quick look at what the encoder learnt)."""
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

