"""The `compress:` section: what `kiln compress` does to a trained model."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import Field, model_validator

from kiln.config import Section, read_yaml, register_section, validate_section
from kiln.errors import KilnError


class QuantizeSpec(Section):
    type: Literal["dynamic", "static"] = "dynamic"  # static: activation ranges calibrated on training rows
    modules: list[Literal["linear", "lstm", "gru", "embedding"]] = ["linear", "lstm", "gru", "embedding"]
    engine: Literal["torch", "onnxruntime"] = "torch"
    calibration_rows: int = Field(256, ge=1, le=100_000)  # static only


class PruneSpec(Section):
    amount: float = Field(gt=0.0, lt=1.0)  # share of the weights set to zero
    # magnitude: one threshold over all layers, or the same share per layer; reconstruct: shares by effect on the outputs, or the same
    scope: Literal["global", "layer"] = "global"
    # activation: |w| x input norm on training rows, per output row; reconstruct: that mask, then the kept weights re-fit
    criterion: Literal["magnitude", "activation", "reconstruct"] = "magnitude"  # (least squares to the dense layer's outputs)
    calibration_rows: int | None = Field(None, ge=1, le=100_000)  # activation (default 512) and reconstruct (default 2048)
    structured: bool = False  # remove whole output rows/channels (by L2 norm), per layer
    fine_tune_epochs: int = Field(0, ge=0, le=1000)  # epochs on the training split with the zeros held fixed
    fine_tune_learning_rate: float | None = Field(None, gt=0.0)  # default: the model's learning rate / 10

    @model_validator(mode="after")
    def _default_rows(self) -> "PruneSpec":
        """Training rows to calibrate on, when not given: a least-squares re-fit per output row wants more than a
        mask. Filled in here, so compression.json records the number used."""
        if self.calibration_rows is None and self.criterion in ("activation", "reconstruct"):
            self.calibration_rows = 2048 if self.criterion == "reconstruct" else 512
        return self


class StudentSpec(Section):
    model: dict[str, Any]  # the student's `model:` section (validated as a model config)
    trainer: dict[str, Any] = {}  # changes to the teacher's trainer section (epochs, learning_rate, ...)


class DistillSpec(Section):
    student: StudentSpec
    teacher: str | None = None  # default: the model being compressed
    data: str | None = None  # the student's training rows (labels optional; default: the teacher's training split)
    temperature: float = Field(4.0, gt=0.0, le=100.0)
    alpha: float = Field(0.5, ge=0.0, le=1.0)  # weight of the hard-label loss
    compare_hard_labels: bool = False  # also train the same student on hard labels only (same seed), as a table row


class MeasureSpec(Section):
    batch_sizes: list[Annotated[int, Field(ge=1, le=65_536)]] = Field([1, 64], min_length=1)  # latency per row at these batch sizes
    rows: int = Field(2048, ge=1)  # about this many rows per batch size and variant, per repeat
    repeats: int = Field(7, ge=1, le=100)  # the median of the repeats is kept


class CompressSpec(Section):
    distill: DistillSpec | None = None
    quantize: QuantizeSpec | None = None
    prune: PruneSpec | None = None
    max_metric_drop: float | None = Field(None, ge=0.0)  # refuse when the test metric drops more than this
    measure: MeasureSpec = MeasureSpec()  # how the before/after latencies are timed


register_section("compress", CompressSpec)  # a training config may carry it: `kiln train` then compresses its model


def load_spec(source: str | Path | dict[str, Any] | CompressSpec | None, **cli: Any) -> CompressSpec:
    """A spec from a YAML file with a `compress:` section (other sections are ignored), a dict, or
    command-line options alone; options given on the command line override the file."""
    if isinstance(source, CompressSpec):
        raw: dict[str, Any] = source.model_dump()
    elif isinstance(source, (str, Path)):
        document = read_yaml(source)
        if not isinstance(document.get("compress"), dict):
            raise KilnError(f"{source}: no `compress:` section")
        raw = dict(document["compress"])
    else:
        raw = dict(source or {})
    for key, value in cli.items():
        if value is None:
            continue
        section, _, field = key.partition(".")
        if field:
            raw[section] = {**(raw.get(section) or {}), field: value}
        else:
            raw[section] = value
    spec: CompressSpec = validate_section("compress", raw)
    if spec.quantize is None and spec.prune is None and spec.distill is None:
        raise KilnError("nothing to do: give compress.quantize, compress.prune and/or compress.distill (or --quantize / --prune)")
    return spec
