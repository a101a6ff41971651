"""Tokenizer `pretrained`: a Hugging Face checkpoint's own tokenizer (AutoTokenizer from the directory).

`fit` reads the checkpoint instead of learning a vocabulary; the state is the fast tokenizer's JSON
(special tokens, truncation to max_length included), so a saved model tokenizes without the checkpoint
and without transformers. Rows are padded with the checkpoint's padding id.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from kiln.errors import KilnError
from kiln.features.tokenizers import TOKENIZERS, Tokenizer
from kiln.hf.checkpoint import load_tokenizer


@TOKENIZERS.register("pretrained")
class PretrainedTokenizer(Tokenizer):
    kind = "pretrained"

    def __init__(self, vocab_size: int = 10000, lowercase: bool = True, min_frequency: int = 1,
                 path: str | None = None, max_length: int = 512) -> None:
        super().__init__(vocab_size, lowercase, min_frequency)
        self.path = path
        self.max_length = max_length
        self.pad_id = 0  # type: ignore[misc]  # the checkpoint's, set by fit / load_state
        self._tok: Any = None

    @property
    def backend(self) -> Any:
        if self._tok is None:
            raise KilnError("the pretrained tokenizer is used before it was loaded from its checkpoint")
        return self._tok

    def fit(self, texts: Iterable[str]) -> "Tokenizer":
        if not self.path:
            raise KilnError("tokenizer 'pretrained' needs a checkpoint directory: use model type hf, "
                            "or set tokenizer_path on the text feature")
        tokenizer = load_tokenizer(self.path)
        self._load(tokenizer.backend_tokenizer.to_str(), int(tokenizer.pad_token_id))
        return self

    def _load(self, spec: str, pad_id: int) -> None:
        from tokenizers import Tokenizer as Backend

        tok = Backend.from_str(spec)
        tok.no_padding()  # the text feature pads, with pad_id
        tok.enable_truncation(self.max_length)  # counts [CLS]/[SEP], so [SEP] survives truncation
        self._tok, self.pad_id = tok, pad_id
        index = tok.get_vocab(with_added_tokens=True)
        self.vocab = sorted(index, key=index.__getitem__)
        self._index = index

    @property
    def vocab_size(self) -> int:
        return int(self.backend.get_vocab_size(with_added_tokens=True))

    def encode(self, text: str) -> list[int]:
        return list(self.backend.encode(text).ids)

    def encode_batch(self, texts: Iterable[str]) -> list[list[int]]:
        return [list(e.ids) for e in self.backend.encode_batch(list(texts))]

    def decode(self, ids: Iterable[int]) -> str:
        return str(self.backend.decode([int(i) for i in ids], skip_special_tokens=True))

    def state(self) -> dict[str, Any]:
        return {"kind": self.kind, "path": self.path, "max_length": self.max_length, "pad_id": self.pad_id,
                "json": self.backend.to_str()}

    def load_state(self, state: dict[str, Any]) -> "Tokenizer":
        self.path, self.max_length = state.get("path"), int(state["max_length"])
        self._load(state["json"], int(state["pad_id"]))
        return self
