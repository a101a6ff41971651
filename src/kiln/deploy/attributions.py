"""Integrated gradients (Captum) for one output of a supervised model, per input feature.

Each input is attributed where it enters the network as a vector: numeric, binary, image and audio
(spectrogram) inputs at the input itself, category inputs at their one-hot/embedding encoding, text at the token embeddings
(per token, summed over the embedding), an n-gram bag at its table rows (per n-gram slot). Baselines: the training mean for numeric, binary and image
inputs, the most frequent category, and padding embeddings (zeros) for text, with each row's own
length kept (text read by a Hugging Face encoder: each word replaced by [MASK], see hf_text_baselines); an audio baseline is the mean spectrogram under the row's own frame mask (row 0). The explained score is the logit of the predicted class (classification) or the
prediction itself (regression). Completeness: the attributions of a row sum to score(row) −
score(baseline path start); `completeness_error` is the relative gap."""

from __future__ import annotations

from typing import Any

import copy
import warnings

import torch
from torch import nn

from kiln.data.preprocessor import TensorData
from kiln.errors import KilnError
from kiln.hf.encoder import HFTextEncoder
from kiln.models.ngram import NgramBagEncoder

FLOAT_INPUTS = ("numeric", "binary", "image", "audio")


class ProbedNet(nn.Module):
    """The network as f(*inputs) → the first output's logits, with an Identity probe on each float input."""

    def __init__(self, net: nn.Module, names: list[str], output: str) -> None:
        super().__init__()
        self.net, self.names, self.output = net, names, output
        self.probes = nn.ModuleDict({str(i): nn.Identity() for i in range(len(names))})

    def forward(self, *tensors: torch.Tensor) -> torch.Tensor:
        inputs = {name: self.probes[str(i)](t) for i, (name, t) in enumerate(zip(self.names, tensors))}
        return self.net(inputs)[self.output]


def untrimmed(net: nn.Module) -> nn.Module:
    """A copy whose text Transformers and text CNNs run over the full padded length (the trimmed variants
    would give a baseline of all padding a different shape; the outputs are the same either way)."""
    from kiln.models.encoders import TextTransformerEncoder
    from kiln.models.textcnn import TextCNNEncoder, TrimmedTextCNN
    from kiln.models.transformer import TrimmedTextTransformer

    full = {TrimmedTextTransformer: TextTransformerEncoder, TrimmedTextCNN: TextCNNEncoder}
    if not any(type(m) in full for m in net.modules()):
        return net  # nothing to swap: no copy (an SST-2 LSTM's embedding is megabytes)
    net = copy.deepcopy(net)
    for module in net.modules():
        if type(module) in full:
            module.__class__ = full[type(module)]
    return net


def attribution_layers(probed: ProbedNet, features: list[Any]) -> list[nn.Module]:
    """Where each input is attributed (see the module docstring)."""
    layers = []
    for i, feature in enumerate(features):
        encoder = probed.net.encoders[i]
        if feature.type in FLOAT_INPUTS:
            layers.append(probed.probes[str(i)])
        elif feature.type == "category":
            layers.append(encoder)
        elif feature.type == "text" and isinstance(getattr(encoder, "embedding", None), nn.Embedding):
            layers.append(encoder.embedding)
        elif feature.type == "text" and isinstance(encoder, NgramBagEncoder):
            layers.append(encoder.table)  # (rows, width, dim): one row per n-gram slot, 0 at padding
        elif feature.type == "text" and isinstance(encoder, HFTextEncoder):
            layers.append(encoder.backbone.get_input_embeddings())  # word embeddings (before positions and LayerNorm)
        else:
            raise KilnError(f"cannot explain input '{feature.name}' ({feature.type}) of model type {type(encoder).__name__}")
    return layers


def baselines(features: list[Any], reference: TensorData, rows: int) -> tuple[torch.Tensor, ...]:
    """Baseline inputs, `rows` copies: training means, most frequent categories, all-padding text."""
    out = []
    for feature in features:
        values = reference.inputs[feature.name]
        if feature.type in FLOAT_INPUTS:
            base = values.float().mean(0, keepdim=True)
        elif feature.type == "category":
            base = torch.mode(values).values.reshape(1)
        else:
            base = torch.zeros_like(values[:1])
        out.append(base.expand(rows, *base.shape[1:]).contiguous())
    return tuple(out)


def keep_audio_masks(features: list[Any], base: tuple[torch.Tensor, ...], inputs: tuple[torch.Tensor, ...]) -> tuple[torch.Tensor, ...]:
    """Audio tensors are (1, 1 + bins, frames) per row with the frame mask in row 0: the baseline keeps
    each row's own mask and is zero in its padding, as the input is, so only the clip is attributed."""
    out = list(base)
    for i, feature in enumerate(features):
        if feature.type == "audio":
            mask = inputs[i][:, :, :1, :]
            out[i] = torch.cat([mask, base[i][:, :, 1:, :] * mask], dim=2)
    return tuple(out)


def hf_text_baselines(probed: ProbedNet, features: list[Any], base: tuple[torch.Tensor, ...],
                      inputs: tuple[torch.Tensor, ...]) -> tuple[torch.Tensor, ...]:
    """A Hugging Face encoder derives its attention mask from the ids, so its text baseline is each row
    itself with every token that is neither padding nor special ([CLS], [SEP]) replaced by the
    tokenizer's [MASK] (else [UNK]) id: same length and mask, no words."""
    out = list(base)
    for i, feature in enumerate(features):
        if feature.type != "text" or not isinstance(probed.net.encoders[i], HFTextEncoder):
            continue
        backend = feature.tokenizer.backend
        neutral = next((backend.token_to_id(t) for t in ("[MASK]", "<mask>", "[UNK]", "<unk>") if backend.token_to_id(t) is not None), None)
        if neutral is None:
            raise KilnError(f"cannot explain input '{feature.name}': its tokenizer has no [MASK] or [UNK] token for a baseline")
        keep = torch.tensor(sorted({int(feature.tokenizer.pad_id)} | {int(k) for k, t in backend.get_added_tokens_decoder().items() if t.special}))
        ids = inputs[i]
        out[i] = torch.where(torch.isin(ids, keep), ids, torch.full_like(ids, neutral))
    return tuple(out)


def _scores(probed: ProbedNet, inputs: tuple[torch.Tensor, ...], target: torch.Tensor) -> torch.Tensor:
    with torch.no_grad():
        return probed(*inputs).gather(1, target[:, None]).squeeze(1)


def _start_scores(probed: ProbedNet, layers: list[nn.Module], inputs: tuple[torch.Tensor, ...],
                  base: tuple[torch.Tensor, ...], target: torch.Tensor) -> torch.Tensor:
    """The score where the integration path starts: each layer's output replaced by its baseline output."""
    captured: dict[int, torch.Tensor] = {}
    hooks = [layer.register_forward_hook(lambda m, a, out, i=i: captured.__setitem__(i, out)) for i, layer in enumerate(layers)]
    try:
        with torch.no_grad():
            probed(*base)
    finally:
        for h in hooks:
            h.remove()
    hooks = [layer.register_forward_hook(lambda m, a, out, i=i: captured[i]) for i, layer in enumerate(layers)]
    try:
        return _scores(probed, inputs, target)
    finally:
        for h in hooks:
            h.remove()


def integrated_gradients(net: nn.Module, features: list[Any], output: Any, data: TensorData, reference: TensorData,
                         steps: int = 50) -> dict[str, Any]:
    """Attributions of every row of `data`: per input, a tensor shaped like its layer output."""
    from captum.attr import LayerIntegratedGradients

    names = [f.name for f in features]
    probed = ProbedNet(untrimmed(net), names, output.name).eval()
    layers = attribution_layers(probed, features)
    inputs = tuple(data.inputs[n] for n in names)
    base = keep_audio_masks(features, baselines(features, reference, len(data)), inputs)
    base = hf_text_baselines(probed, features, base, inputs)
    with torch.no_grad():
        logits = probed(*inputs)
    target = logits.argmax(1) if logits.shape[1] > 1 else torch.zeros(len(data), dtype=torch.int64)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # "multiple layers provided": each layer here is a separate input's entry point
        lig = LayerIntegratedGradients(probed, layers)
    # The midpoint rule: on SST-2 LSTMs (saturating gates) its completeness error at the 90th percentile
    # was lower than Captum's default Gauss-Legendre (0.0176 vs 0.0255 and 0.0188 vs 0.0205, 100 dev rows, 50 steps)
    attributions = lig.attribute(inputs, baselines=base, target=target, n_steps=steps, method="riemann_middle",
                                 internal_batch_size=max(steps, 64))
    if not isinstance(attributions, list):
        attributions = [attributions]
    attributions = [a.detach() for a in attributions]
    score = logits.gather(1, target[:, None]).squeeze(1)
    start = _start_scores(probed, layers, inputs, base, target)
    total = sum(a.reshape(len(data), -1).sum(1) for a in attributions)
    gap = (total - (score - start)).abs() / (score - start).abs().clamp(min=1e-6)
    return {"attributions": dict(zip(names, attributions)), "target": target, "score": score, "start": start,
            "completeness_error": gap}
