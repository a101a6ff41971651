"""The cached frozen-encoder path (`trainer.freeze: [encoder]` on model type hf): every split's rows
go through the encoder once (no grad, eval mode, batched by length), the pooled vectors are cached
(in memory; on disk in the run directory, keyed by the checkpoint's weights and the token ids), and
kiln's one Trainer fits the trunk and heads on them. The full network, encoder included, is what is
saved and what predicts from raw text."""

from __future__ import annotations

import hashlib
import json
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from kiln.data.preprocessor import TensorData
from kiln.io import load_tensors, save_tensors
from kiln.models.base import Network
from kiln.models.cached import cacheable, on_cached

CACHE_DIR = "cache"  # in the run directory


@dataclass
class Frozen:
    """The network to train (sharing trunk and heads with the full one) and the splits it trains on."""

    net: Network
    tensors: dict[str, TensorData]
    report: dict[str, Any] = field(default_factory=dict)


def cache_frozen(config: Any, net: Any, tensors: dict[str, TensorData], device: torch.device,
                 cache_dir: Path | None = None, memo: dict[str, dict[str, torch.Tensor]] | None = None) -> Frozen | None:
    """The cached path when the config freezes an encoder that can pool its rows once; else None."""
    encoders = cacheable(net)
    if "encoder" not in config.trainer.freeze or not encoders:
        return None
    tick = time.perf_counter()
    key = cache_key(encoders, tensors)
    path = cache_dir / f"pooled-{key[:24]}.safetensors" if cache_dir is not None and key else None
    pooled, source = (memo or {}).get(key), "memory"
    if pooled is None and path is not None and path.is_file():
        pooled, source = load_tensors(path), "disk"
    wanted = {f"{split}/{name}": len(data) for split, data in tensors.items() for name in encoders}
    if pooled is None or any(k not in pooled or len(pooled[k]) != n for k, n in wanted.items()):
        pooled, source = {}, "encoded"
        for name, encoder in encoders.items():
            encoder.to(device)
            for split, data in tensors.items():
                pooled[f"{split}/{name}"] = encoder.pool_rows(data.inputs[name], config.trainer.eval_batch_size)
        if path is not None:
            save_tensors(path, pooled)
    if memo is not None and key:
        memo[key] = pooled
    cached = {split: TensorData({**data.inputs, **{n: pooled[f"{split}/{n}"] for n in encoders}}, data.targets)
              for split, data in tensors.items()}
    report = {"inputs": list(encoders), "rows": sum(len(d) for d in tensors.values()), "source": source,
              "seconds": round(time.perf_counter() - tick, 3), "file": str(path) if path is not None else None}
    return Frozen(on_cached(net, list(encoders)), cached, report)


def cache_key(encoders: dict[str, Any], tensors: dict[str, TensorData]) -> str:
    """sha256 of the checkpoint's weights (as recorded at load), the pooling, and every split's token ids;
    empty when the encoder's weights are not those of a checkpoint on disk (nothing is cached on disk)."""
    digest = hashlib.sha256()
    for name, encoder in encoders.items():
        base = getattr(encoder, "base", None)
        if not base or not base.get("sha256"):
            return ""
        digest.update(json.dumps([name, base, getattr(encoder, "pooling", None)], sort_keys=True).encode())
        for split in sorted(tensors):
            ids = tensors[split].inputs[name].cpu().contiguous()
            digest.update(f"{split}:{tuple(ids.shape)}:{ids.dtype}".encode())
            digest.update(ids.numpy().tobytes())
    return digest.hexdigest()
