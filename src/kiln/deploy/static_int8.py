"""torch.ao static int8 (eager mode) for kiln's Network: the trunk and the heads run in int8 (Linear+ReLU
fused, other activations in fp32 between a dequantise and a quantise), with activation ranges calibrated
on training rows; the encoders stay fp32. The input of the trunk is quantised, the heads' outputs
dequantised, so the network still maps a dict of fp32 tensors to fp32 logits.

Nothing here is pickled: the int8 weights are stored like the dynamic path's (int8 + one scale per row,
kiln.deploy.quantize) and the calibrated activation ranges are one (scale, zero point) per quantising
module, kept as JSON in model.json. `build` turns the fp32 network and those ranges into the same
int8 network at compression and at load time.

Engine: x86 (torch's default on x86; its int8 Linear kernels are fbgemm's) where this torch has it,
else qnnpack (ARM). Measured here, the digits MLP in int8 ran 1.6-4.5x slower with qnnpack than with x86
(docs/compress.md). The engine only matters while the weights are packed; the packed network runs
whatever `torch.backends.quantized.engine` is set to later.
"""

from __future__ import annotations

import contextlib
import copy
import warnings
from collections.abc import Iterable, Iterator
from typing import Any

import torch
from torch import nn

from kiln.errors import KilnError
from kiln.models.activations import ACTIVATIONS
from kiln.models.base import Network

FLOAT_ONLY = tuple(a for a in ACTIVATIONS.values() if a is not nn.ReLU)  # ReLU: fused into its Linear
QParams = dict[str, list[float]]  # module name -> [scale, zero point]


def engine() -> str:
    """The quantised engine kiln packs static int8 weights for: x86 where available, else qnnpack."""
    supported = torch.backends.quantized.supported_engines
    return "x86" if "x86" in supported else "qnnpack"


@contextlib.contextmanager
def _quiet_engine(name: str) -> Iterator[None]:
    """torch.ao's deprecation notices silenced, and `name` as the quantised engine while inside."""
    previous = torch.backends.quantized.engine
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.backends.quantized.engine = name
        try:
            yield
        finally:
            torch.backends.quantized.engine = previous


class FloatActivation(nn.Module):
    """An activation without an int8 kernel to fuse with: dequantise, apply in fp32, quantise again."""

    def __init__(self, act: nn.Module) -> None:
        super().__init__()
        from torch.ao.quantization import DeQuantStub, QuantStub

        self.dequant, self.act, self.quant = DeQuantStub(), act, QuantStub()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.quant(self.act(self.dequant(x)))


def int8_names(net: nn.Module) -> list[str]:
    """State-dict names of the weights static int8 covers: the Linear layers of the trunk and the heads."""
    check(net)
    return [f"{part}.{name}.weight" for part in ("trunk", "heads") for name, m in getattr(net, part).named_modules()
            if isinstance(m, nn.Linear)]


def check(net: nn.Module) -> None:
    if not isinstance(net, Network):
        raise KilnError(f"compress.quantize: static int8 with engine: torch covers kiln's own networks (trunk and heads); "
                        f"this model's network is a {type(net).__name__}; use engine: onnxruntime")


def _prepared(float_net: nn.Module) -> nn.Module:
    """A copy of `float_net` with quantise/dequantise stubs around trunk and heads, fused and observed."""
    from torch.ao.quantization import DeQuantStub, QConfig, QuantStub, fuse_modules, prepare
    from torch.ao.quantization.observer import HistogramObserver, PerChannelMinMaxObserver

    check(float_net)
    net = copy.deepcopy(float_net).eval()
    layers = [m for m in net.trunk if not isinstance(m, nn.Dropout)]
    trunk = nn.Sequential(QuantStub(), *layers)
    fuse = [[str(i), str(i + 1)] for i in range(1, len(trunk) - 1)
            if isinstance(trunk[i], nn.Linear) and type(trunk[i + 1]) is nn.ReLU]
    trunk = fuse_modules(trunk, fuse) if fuse else trunk
    for i in range(1, len(trunk)):
        if isinstance(trunk[i], FLOAT_ONLY):
            trunk[i] = FloatActivation(trunk[i])
    net.trunk = trunk
    net.heads = nn.ModuleList(nn.Sequential(head, DeQuantStub()) for head in net.heads)
    for encoder in net.encoders:
        encoder.qconfig = None
    # activations: histogram ranges (outliers clipped; 7-bit like torch's x86 default, safe without VNNI);
    # weights: symmetric per row in [-127, 127], the scales kiln's int8 storage keeps (quantize.quantize_rows)
    qconfig = QConfig(activation=HistogramObserver.with_args(reduce_range=True),
                      weight=PerChannelMinMaxObserver.with_args(dtype=torch.qint8, qscheme=torch.per_channel_symmetric,
                                                                quant_min=-127, quant_max=127))
    for part in (net.trunk, net.heads):
        part.qconfig = qconfig
    return prepare(net, inplace=True)


def _qparams(net: nn.Module) -> QParams:
    out = {}
    for name, module in net.named_modules():
        if hasattr(module, "scale") and hasattr(module, "zero_point") and name:
            out[name] = [float(module.scale), float(module.zero_point)]
    return out


def calibrate(float_net: nn.Module, batches: Iterable[dict[str, torch.Tensor]]) -> QParams:
    """Observe the activations of `float_net` on `batches` (training rows): each quantising module's (scale, zero point)."""
    with _quiet_engine(engine()):
        from torch.ao.quantization import convert

        net = _prepared(float_net)
        with torch.inference_mode():
            for batch in batches:
                net(batch)
        return _qparams(convert(net, inplace=True))


def build(float_net: nn.Module, qparams: QParams, engine_name: str | None = None) -> nn.Module:
    """The int8 network for `float_net` with the calibrated ranges `qparams` (what compression measured and saved),
    its weights packed for `engine_name` (default: `engine()`)."""
    with _quiet_engine(engine_name or engine()):
        from torch.ao.quantization import convert

        net = convert(_prepared(float_net), inplace=True)  # uncalibrated: the ranges are set below
        modules = dict(net.named_modules())
        if set(qparams) != set(_qparams(net)):
            raise KilnError("compression.static_qparams does not match this network's quantised modules")
        for name, (scale, zero_point) in qparams.items():
            _set(modules[name], scale, int(zero_point))
    return net.eval()


def _set(module: Any, scale: float, zero_point: int) -> None:
    if isinstance(module.scale, torch.Tensor):  # nnq.Quantize keeps them as buffers
        module.scale.fill_(scale)
        module.zero_point.fill_(zero_point)
    else:
        module.scale, module.zero_point = scale, zero_point
