"""The text encoder of model type `hf`: a Hugging Face encoder (optionally LoRA-adapted through peft)
pooled to one vector per row, which kiln's trunk and heads take from there."""

from __future__ import annotations

import warnings
from typing import Any

import torch
from torch import nn

from kiln.errors import KilnError
from kiln.hf import require
from kiln.hf.checkpoint import encoder_from_architecture, load_encoder, weights_sha256


class HFTextEncoder(nn.Module):
    """Token ids (batch, max_length), padded with `pad_id` → pooled (batch, hidden) representation.

    With a LoRA adapter, or a frozen encoder (`trainer.freeze: [encoder]`), the frozen base weights stay
    out of `state_dict` (saved models, checkpoints and best-epoch copies hold only adapter and head
    weights) and may be absent when a state is loaded.
    """

    def __init__(self, backbone: nn.Module, pad_id: int, pooling: str, dropout: float, adapter: bool,
                 frozen: bool = False) -> None:
        super().__init__()
        self.backbone = backbone
        self.pad_id, self.pooling, self.adapter = pad_id, pooling, adapter
        self.output_dim = int(backbone.config.hidden_size)
        self.drop = nn.Dropout(dropout) if dropout > 0 else nn.Identity()
        self.base: dict[str, Any] = {}  # path and sha256 of the base checkpoint (adapters and frozen encoders)
        self.saved: set[str] | None = None
        if frozen:
            backbone.requires_grad_(False)
            self.saved = set()
        elif adapter:
            self.saved = {name for name, p in backbone.named_parameters() if p.requires_grad}
        self.register_load_state_dict_post_hook(_base_may_be_missing)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.drop(self.pool(x))

    def pool(self, x: torch.Tensor) -> torch.Tensor:
        """The pooled vector of each row, before dropout (what the frozen-encoder cache stores)."""
        mask = x != self.pad_id
        length = max(1, int(mask.sum(dim=1).max()))  # rows are post-padded: run only up to the longest
        x, mask = x[:, :length], mask[:, :length]
        out = self.backbone(input_ids=x, attention_mask=mask.long())
        if self.pooling == "pooler":
            pooled = out.pooler_output
        elif self.pooling == "mean":
            weights = mask.unsqueeze(-1).to(out.last_hidden_state.dtype)
            pooled = (out.last_hidden_state * weights).sum(1) / weights.sum(1).clamp(min=1.0)
        else:
            pooled = out.last_hidden_state[:, 0]  # [CLS] / the first token
        return pooled

    @torch.no_grad()  # not inference_mode: the vectors are a training input
    def pool_rows(self, x: torch.Tensor, batch_size: int) -> torch.Tensor:
        """`pool` over many rows in eval mode, in batches of similar length (less padding), in row order."""
        was_training = self.training
        self.eval()
        device = next(self.backbone.parameters()).device
        order = torch.argsort((x != self.pad_id).sum(dim=1), stable=True)
        out = torch.empty(len(x), self.output_dim)
        for start in range(0, len(x), batch_size):
            rows = order[start : start + batch_size]
            out[rows] = self.pool(x[rows].to(device)).float().cpu()
        self.train(was_training)
        return out

    def is_base_key(self, key: str) -> bool:
        """True for a state key of the frozen base (relative to this module)."""
        return self.saved is not None and key.startswith("backbone.") and key[len("backbone."):] not in self.saved

    def state_dict(self, *args: Any, destination: Any = None, prefix: str = "", keep_vars: bool = False) -> Any:
        state = super().state_dict(*args, destination=destination, prefix=prefix, keep_vars=keep_vars)
        for key in [k for k in state if k.startswith(prefix) and self.is_base_key(k[len(prefix):])]:
            del state[key]
        return state

    def merge(self) -> None:
        """Fold the LoRA weights into the base (peft merge_and_unload): a plain encoder, saved whole."""
        if not self.adapter:
            raise KilnError("this model has no LoRA adapter to merge")
        self.backbone = self.backbone.merge_and_unload()
        self.saved, self.base, self.adapter = None, {}, False


def _base_may_be_missing(module: HFTextEncoder, incompatible: Any) -> None:
    keys = incompatible.missing_keys
    keys[:] = [k for k in keys if "backbone." not in k or not module.is_base_key(k[k.index("backbone."):])]


def build_encoder(cfg: Any, info: dict[str, Any]) -> HFTextEncoder:
    """Load the checkpoint (or, for a saved full model, only its architecture) and add the adapter; a
    frozen encoder (`trainer.freeze: [encoder]`, noted by the model type as `cfg._frozen`) is kept out of
    the saved state like a LoRA base."""
    architecture, frozen = getattr(cfg, "_architecture", None), bool(getattr(cfg, "_frozen", False))
    if architecture is not None and cfg.adapter is None and not frozen:
        backbone, root = encoder_from_architecture(architecture), None
    else:
        backbone, root = load_encoder(cfg.path)
    _check_sizes(backbone.config, info, root or "the saved architecture")
    if cfg.adapter is not None:
        backbone = _add_lora(backbone, cfg.adapter, root)
    encoder = HFTextEncoder(backbone, int(info.get("pad_id", 0)), cfg.pooling, cfg.dropout, cfg.adapter is not None, frozen)
    if cfg.adapter is not None or frozen:
        encoder.base = {"path": str(root), "sha256": weights_sha256(root)}
    return encoder


def _check_sizes(config: Any, info: dict[str, Any], where: Any) -> None:
    positions = getattr(config, "max_position_embeddings", None)
    if positions and info["max_length"] > positions:
        raise KilnError(f"text max_length {info['max_length']} is longer than the {positions} positions of {where}; "
                        f"set the text feature's max_length to at most {positions}")
    if info["vocab_size"] > config.vocab_size:
        raise KilnError(f"the tokenizer has {info['vocab_size']} tokens but {where} embeds only {config.vocab_size}")


def _add_lora(backbone: nn.Module, adapter: Any, root: Any) -> nn.Module:
    peft = require("peft")
    lora = peft.LoraConfig(r=adapter.r, lora_alpha=adapter.alpha, lora_dropout=adapter.dropout,
                           target_modules=list(adapter.target_modules), bias="none")
    try:
        with warnings.catch_warnings():  # deprecation notices between transformers and peft versions
            warnings.simplefilter("ignore", FutureWarning)
            return peft.get_peft_model(backbone, lora)
    except ValueError:
        names = sorted({n.rsplit(".", 1)[-1] for n, m in backbone.named_modules() if isinstance(m, nn.Linear)})
        raise KilnError(f"model.adapter.target_modules {list(adapter.target_modules)} match no layer of {root}; "
                        f"its linear layers: {', '.join(names)}") from None
