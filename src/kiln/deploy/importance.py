"""Permutation importance: how much the test metric falls when one input column is shuffled
(rows of its encoded tensor permuted: the same as shuffling the raw column, since every feature
transforms each row on its own), with the spread over repeats."""

from __future__ import annotations

import statistics
from typing import Any

import torch

from kiln.data.preprocessor import TensorData
from kiln.deploy.common import primary_metric


def permutation_importance(model: Any, data: TensorData, repeats: int = 5, seed: int = 0) -> dict[str, Any]:
    metric, base, higher = primary_metric(model.metrics_for(data))
    generator = torch.Generator().manual_seed(seed)
    features: dict[str, Any] = {}
    for feature in model.preprocessor.inputs:
        drops = []
        for _ in range(repeats):
            order = torch.randperm(len(data), generator=generator)
            shuffled = TensorData({**data.inputs, feature.name: data.inputs[feature.name][order]}, data.targets)
            value = primary_metric(model.metrics_for(shuffled))[1]
            drops.append(base - value if higher else value - base)
        features[feature.name] = {"mean": statistics.fmean(drops), "std": statistics.stdev(drops) if repeats > 1 else 0.0,
                                  "values": drops}
    return {"metric": metric, "baseline": base, "repeats": repeats, "rows": len(data), "features": features}
