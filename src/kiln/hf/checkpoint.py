"""Reading a local Hugging Face checkpoint directory: checks with one-line errors, the encoder,
its tokenizer, and the sha256 of its weight files."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

from kiln.config import expand_path
from kiln.errors import KilnError
from kiln.hf import require

TOKENIZER_FILES = ("tokenizer.json", "vocab.txt", "vocab.json", "spiece.model", "sentencepiece.bpe.model", "tokenizer.model")
EXPECTED = "a local directory written by save_pretrained, with config.json, model.safetensors and the tokenizer files"


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def checkpoint_dir(path: str) -> Path:
    """The checkpoint directory named by `model.path` (variables expanded), checked to exist."""
    root = Path(expand_path(path, "model.path"))
    if not root.is_dir():
        raise KilnError(f"Hugging Face checkpoint not found: {root} (expected {EXPECTED}; kiln never downloads)")
    if not (root / "config.json").is_file():
        raise KilnError(f"not a Hugging Face checkpoint: {root} has no config.json (expected {EXPECTED})")
    return root


def encoder_config(root: Path) -> Any:
    """The checkpoint's transformers config, refused unless it is an encoder-only (BERT-style) model."""
    transformers = require("transformers")
    try:
        config = transformers.AutoConfig.from_pretrained(str(root), local_files_only=True)
    except (OSError, ValueError, KeyError) as exc:
        raise KilnError(f"cannot read {root / 'config.json'}: {_first_line(exc)}") from None
    from transformers.models.auto.modeling_auto import MODEL_FOR_MASKED_LM_MAPPING_NAMES as ENCODERS

    kind = getattr(config, "model_type", None)
    if getattr(config, "is_encoder_decoder", False) or kind not in ENCODERS:
        raise KilnError(f"not an encoder model: {root} is a '{kind}' checkpoint; model type hf needs a BERT-style "
                        f"encoder (e.g. bert, roberta, distilbert, electra, deberta-v2)")
    return config


def load_encoder(path: str) -> tuple[Any, Path]:
    """The checkpoint's encoder (AutoModel, float32, safetensors only: never unpickled) and its directory."""
    root = checkpoint_dir(path)
    encoder_config(root)
    if not weight_files(root):
        raise KilnError(f"no weights in {root}: expected model.safetensors (kiln never loads pickled .bin files; "
                        f"re-save the model with save_pretrained(safe_serialization=True))")
    transformers = require("transformers")
    try:
        model = transformers.AutoModel.from_pretrained(str(root), local_files_only=True, use_safetensors=True)
    except (OSError, ValueError, RuntimeError) as exc:
        raise KilnError(f"cannot load the Hugging Face checkpoint {root}: {_first_line(exc)}") from None
    return model.float(), root


def encoder_from_architecture(architecture: dict[str, Any]) -> Any:
    """An encoder with a saved architecture (`config.to_dict()`) and untrained weights, to load a state into."""
    transformers = require("transformers")
    config = transformers.AutoConfig.for_model(**architecture)
    return transformers.AutoModel.from_config(config).float()


def load_tokenizer(path: str) -> Any:
    """The checkpoint's own tokenizer (AutoTokenizer); it must be a fast one with a padding token."""
    root = checkpoint_dir(path)
    encoder_config(root)
    if not any((root / name).is_file() for name in TOKENIZER_FILES):
        raise KilnError(f"no tokenizer in {root}: expected tokenizer.json (or vocab.txt) with tokenizer_config.json, "
                        f"as written by the tokenizer's save_pretrained")
    transformers = require("transformers")
    try:
        tokenizer = transformers.AutoTokenizer.from_pretrained(str(root), local_files_only=True)
    except (OSError, ValueError, KeyError, TypeError, AttributeError) as exc:
        raise KilnError(f"no usable tokenizer in {root}: expected tokenizer.json or vocab.txt with "
                        f"tokenizer_config.json ({_first_line(exc)})") from None
    if getattr(tokenizer, "backend_tokenizer", None) is None:
        raise KilnError(f"the tokenizer in {root} is not a fast (tokenizers) tokenizer; kiln needs tokenizer.json")
    if tokenizer.pad_token_id is None:
        raise KilnError(f"the tokenizer in {root} has no padding token (expected e.g. [PAD] in tokenizer_config.json)")
    return tokenizer


def weight_files(root: Path) -> list[Path]:
    return sorted(p for p in root.glob("*.safetensors") if p.is_file())


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def weights_sha256(root: Path) -> dict[str, str]:
    """sha256 of each weight file, by file name."""
    return {p.name: _sha256(p) for p in weight_files(root)}
