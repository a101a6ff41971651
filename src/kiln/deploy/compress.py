"""`kiln compress`: prune and/or quantise a trained supervised model, measure it before and after on
its test split, refuse when the test metric drops more than `max_metric_drop`, and write an
ordinary kiln model directory (int8 weights stored as int8 + per-row scales; see compressed.py).
With `quantize.engine: onnxruntime` the directory also holds the int8 `model.onnx` that
`kiln predict --runtime onnx` and `kiln serve --runtime onnx` run."""

from __future__ import annotations

import copy
from html import escape as html_escape
import logging
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
from torch import nn
from torch.nn.utils import prune as torch_prune

from kiln.artifact import WEIGHTS, model_dir
from kiln.deploy import measure, quantize, static_int8
from kiln.deploy.prune import CALIBRATED, apply_pruning
from kiln.deploy.common import load_supervised, primary_metric, split_frames
from kiln.deploy.compressed import CompressedModel
from kiln.deploy.spec import CompressSpec, PruneSpec, QuantizeSpec, load_spec
from kiln.errors import KilnError
from kiln.io import write_json, write_text

REPORT = "compression.json"
COMPRESSED = "compressed"  # beside a run's model/ when the training config has a `compress:` section
PRUNE_LABELS = {"magnitude": "", "activation": " by activation", "reconstruct": " by activation + reconstruction"}
ORT_OPS = {"linear": ["MatMul", "Gemm"], "lstm": ["LSTM"], "gru": ["GRU"], "embedding": ["Gather"]}


# -- pruning (kiln.deploy.prune) ---------------------------------------------------------------
def fine_tune(net: nn.Module, model: Any, frames: dict[str, Any], spec: PruneSpec, progress: bool | str) -> list[dict[str, Any]]:
    """A few epochs on the training split through kiln's one Trainer; the pruning masks keep zeros at zero."""
    from kiln.supervised.task import TableTask
    from kiln.training import Trainer

    pre = model.preprocessor
    cfg = model.config.trainer.model_copy(update={
        "epochs": spec.fine_tune_epochs, "early_stopping": None, "restore_best": False, "convergence_tol": None,
        "learning_rate": spec.fine_tune_learning_rate or model.config.trainer.learning_rate / 10, "compile": False})
    validation = pre.transform(frames["validation"]) if "validation" in frames else None
    task = TableTask(pre.outputs, pre.transform(frames["train"]), validation, cfg)
    trainer = Trainer(net, cfg, torch.device("cpu"), progress=progress)
    return trainer.fit(task)


# -- quantisation with torch.ao -----------------------------------------------------------------
def quantize_torch(net: nn.Module, spec: QuantizeSpec) -> list[str]:
    """Round the weights int8 storage covers through it, in place (the model measured is the model saved); their names.
    Dynamic: the chosen module kinds; static: the Linear layers of the trunk and heads (encoders stay fp32)."""
    if spec.type == "static":
        if "linear" not in spec.modules:
            raise KilnError("compress.quantize: static int8 with engine: torch quantises Linear layers; add linear to modules")
        names = static_int8.int8_names(net)
    else:
        names = quantize.int8_names(net, list(spec.modules))
    quantize.round_trip(net, names)
    return names


def calibration_batches(model: Any, frames: dict[str, Any], rows: int, size: int = 64) -> list[dict[str, torch.Tensor]]:
    """The first `rows` training rows, transformed, in batches (activation ranges for static int8)."""
    data = model.preprocessor.transform(frames["train"].head(rows), targets=False)
    return [{k: v[start : start + size] for k, v in data.inputs.items()} for start in range(0, len(data), size)]


# -- quantisation with onnxruntime ------------------------------------------------------------
def onnxruntime_int8(fp32: bytes, spec: QuantizeSpec, model: Any, frames: dict[str, Any], target: Path) -> None:
    """Quantise an fp32 ONNX file with onnxruntime.quantization (dynamic, or static calibrated on training rows)."""
    ops = [op for kind in spec.modules for op in ORT_OPS[kind]]
    root = logging.getLogger()
    level = root.level
    root.setLevel(logging.ERROR)  # onnxruntime.quantization logs pre-processing advice on the root logger
    try:
        _quantize_file(fp32, spec, model, frames, target, ops)
    finally:
        root.setLevel(level)


def _quantize_file(fp32: bytes, spec: QuantizeSpec, model: Any, frames: dict[str, Any], target: Path, ops: list[str]) -> None:
    from onnxruntime.quantization import CalibrationDataReader, QuantType, quantize_dynamic, quantize_static

    with tempfile.TemporaryDirectory() as folder:
        source = Path(folder) / "fp32.onnx"
        source.write_bytes(fp32)
        if spec.type == "dynamic":
            quantize_dynamic(str(source), str(target), weight_type=QuantType.QInt8, op_types_to_quantize=ops, per_channel=True)
            return
        batches = iter(calibration_batches(model, frames, spec.calibration_rows, 32))
        names = [f.name for f in model.preprocessor.inputs]

        class Rows(CalibrationDataReader):
            def get_next(self) -> dict[str, Any] | None:
                batch = next(batches, None)
                return None if batch is None else {name: batch[name].numpy() for name in names}

        quantize_static(str(source), str(target), Rows(), weight_type=QuantType.QInt8, activation_type=QuantType.QUInt8,
                        op_types_to_quantize=[op for op in ops if op != "LSTM"], per_channel=False)


# -- the command ------------------------------------------------------------------------------
def compress(
    source: str | Path,
    output: str | Path,
    spec: CompressSpec | dict[str, Any] | str | Path | None = None,
    data: Any = None,
    progress: bool | str = False,
    batch_sizes: Sequence[int] | None = None,
    timing_rows: int | None = None,
    timing_repeats: int | None = None,
) -> dict[str, Any]:
    """Compress the model at SOURCE into OUTPUT; returns the report (also OUTPUT/compression.json).
    Latency: about `timing_rows` rows per batch size and variant, median of `timing_repeats`
    (default: the spec's `measure:`)."""
    from kiln.deploy.export import onnx_bytes, sidecar, preprocessing_meta, session
    from kiln.deploy.onnx_model import OnnxModel

    spec = load_spec(spec)
    output = Path(output)
    if output.exists() and any(output.iterdir()):
        raise KilnError(f"{output} exists and is not empty; choose a new output directory")
    model = load_supervised(source)
    frames = split_frames(model, data)
    if "test" not in frames:
        raise KilnError("the model's config has no test split (data.split.test is 0); pass labelled data with --data")
    if spec.quantize and spec.quantize.type == "static" and "train" not in frames:
        raise KilnError("compress.quantize: static int8 calibrates on the training split; it cannot come from --data alone")
    if spec.prune and spec.prune.criterion in CALIBRATED and (spec.prune.structured or "train" not in frames):
        raise KilnError(f"compress.prune.criterion: {spec.prune.criterion} is for unstructured pruning and calibrates on "
                        "the training split (not from --data alone)")
    if spec.prune and spec.prune.fine_tune_epochs and "train" not in frames:
        raise KilnError("compress.prune.fine_tune_epochs needs the training split; it cannot come from --data alone")
    pre = model.preprocessor
    test = pre.transform(frames["test"], where="test split")
    model.net.cpu().eval()
    variants = [measure.variant("original (torch fp32)", model, measure.torch_runner(model.net),
                                (model_dir(source) / WEIGHTS).stat().st_size, measure.count_parameters(model.net))]

    recipe: dict[str, Any] = {"source": str(model_dir(source)), "prune": None, "quantize": None, "int8_weights": [],
                              "distill": None}
    history: list[dict[str, Any]] = []
    if spec.distill:
        model, history, student_variants = distill_student(model, spec, frames, progress)
        variants += student_variants
        recipe["distill"] = spec.distill.model_dump()
    config = model.config
    net = copy.deepcopy(model.net).cpu()
    if spec.prune:
        calibration = calibration_batches(model, frames, spec.prune.calibration_rows or 0) if spec.prune.criterion in CALIBRATED else []
        targets = apply_pruning(net, spec.prune, calibration)
        if spec.prune.fine_tune_epochs:
            history = fine_tune(net, model, frames, spec.prune, progress)
        for module, name in targets:
            torch_prune.remove(module, name)
        recipe["prune"] = spec.prune.model_dump()
    net.eval()
    q = spec.quantize
    if q and q.engine == "torch":
        recipe["int8_weights"] = quantize_torch(net, q)
        recipe["torch_ao_available"] = quantize.torch_quantization_available()
        if q.type == "static" and recipe["torch_ao_available"]:
            recipe["static_engine"] = static_int8.engine()
            recipe["static_qparams"] = static_int8.calibrate(net, calibration_batches(model, frames, q.calibration_rows))
    if q:
        recipe["quantize"] = q.model_dump()
    compressed = CompressedModel(config, pre, net, recipe)
    counts = measure.count_parameters(net)

    output.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=output.parent, prefix=f".{output.name}.") as scratch:  # renamed into place at the end
        staged = Path(scratch) / "model"
        compressed.save(staged)
        if q and q.engine == "onnxruntime":
            fp32 = onnx_bytes(compressed)
            names = [f.name for f in pre.inputs]
            fp32_session = session(fp32)
            fp32_model = OnnxModel(config, pre, fp32_session)
            variants.append(measure.variant("onnxruntime fp32", fp32_model, measure.onnx_runner(fp32_session, names, fp32_model.trim),
                                            len(fp32), counts))
            onnxruntime_int8(fp32, q, model, frames, staged / "model.onnx")
            write_json(sidecar(staged / "model.onnx"), preprocessing_meta(compressed))
            int8_session = session(staged / "model.onnx")
            int8_model = OnnxModel(config, pre, int8_session)
            variants.append(measure.variant(f"onnxruntime int8 {q.type}" + (f" + pruned {spec.prune.amount:.0%}" if spec.prune else ""),
                                            int8_model, measure.onnx_runner(int8_session, names, int8_model.trim),
                                            (staged / "model.onnx").stat().st_size, counts))
        else:
            label = " + ".join(part for part in (
                "distilled student" if spec.distill else "",
                f"pruned {spec.prune.amount:.0%}{' structured' if spec.prune.structured else ''}"
                f"{'' if spec.prune.structured else PRUNE_LABELS[spec.prune.criterion]}"
                f"{f' + fine-tune {spec.prune.fine_tune_epochs} ep' if spec.prune.fine_tune_epochs else ''}" if spec.prune else "",
                f"int8 {q.type} ({_torch_label(recipe)})" if q else "",
            ) if part)
            variants.append(measure.variant(label, compressed, measure.torch_runner(compressed.net),
                                            (staged / WEIGHTS).stat().st_size, counts))
        timing = spec.measure
        rows = measure.rows(variants, test, batch_sizes or timing.batch_sizes, timing_rows or timing.rows,
                            timing_repeats or timing.repeats)
        after = rows[-1]
        report = {"spec": spec.model_dump(), "test_rows": len(test), "rows": rows, "table": measure.table_lines(rows),
                  "fine_tune_history": history, "output": str(output)}
        refuse_if_worse(rows[0], after, spec.max_metric_drop)
        write_json(staged / REPORT, report)
        write_text(staged / "compression.md", "\n".join(report["table"]) + "\n")
        add_report_section(staged / "report.html", report)
        if output.exists():
            output.rmdir()
        staged.rename(output)
    return report


def distill_student(teacher: Any, spec: CompressSpec, frames: dict[str, Any],
                    progress: bool | str) -> tuple[Any, list[dict[str, Any]], list[dict[str, Any]]]:
    """Train the student by distillation, on `distill.data` when given, else on the teacher's training split
    (and, if asked, the same student on the training split's hard labels only, same seed)."""
    from kiln.deploy.distill import student_rows, train_student

    d = spec.distill
    assert d is not None
    if d.teacher is not None:
        teacher = load_supervised(d.teacher)
    if "train" not in frames:
        raise KilnError("compress.distill needs the teacher's training split; it cannot come from --data alone")
    rows = student_rows(teacher, d.data) if d.data is not None else None
    student = train_student(teacher, d.student.model, frames, d.temperature, d.alpha, d.student.trainer, progress, rows)
    extra = []
    if d.compare_hard_labels:
        plain = train_student(teacher, d.student.model, frames, d.temperature, 1.0, d.student.trainer, progress)
        plain.net.eval()
        extra.append(measure.variant("same student, hard labels only", plain, measure.torch_runner(plain.net),
                                     _state_bytes(plain.net), measure.count_parameters(plain.net)))
    return student, student.history, extra


def _torch_label(recipe: dict[str, Any]) -> str:
    if not recipe.get("torch_ao_available"):
        return "stored int8, fp32 compute"
    return f"torch.ao, {recipe['static_engine']}" if recipe.get("static_engine") else "torch.ao"


def _state_bytes(net: nn.Module) -> int:
    return sum(t.numel() * t.element_size() for t in net.state_dict().values())


def add_report_section(path: Path, report: dict[str, Any]) -> Path:
    """The before/after table as the "Compression" section of the report at `path` (made when missing)."""
    from kiln.evaluate.report import add_section, html_table

    header, cells = measure.report_table(report["rows"])
    note = (f"Test split: {report['test_rows']} rows. Latency: CPU, one thread, per row, median of repeats with the "
            f"variants timed in turn; throughput at batch {report['rows'][0]['throughput_batch']}. "
            f"Compressed model: {report['output']} (also compression.json, compression.md).")
    return add_section(path, "compression", "Compression", f'<p class="note">{html_escape(note)}</p>\n' + html_table(header, cells),
                       title="kiln compression report")


def compress_run(run_dir: str | Path, spec: CompressSpec | dict[str, Any], progress: bool | str = False) -> dict[str, Any]:
    """After `kiln train` with a `compress:` section: RUN/model → RUN/compressed, and the table in RUN/report.html."""
    run_dir = Path(run_dir)
    target = run_dir / COMPRESSED
    try:
        report = compress(run_dir / "model", target, spec, progress=progress)
    except KilnError as exc:
        raise KilnError(f"the trained model is in {run_dir / 'model'}, but {exc}") from None
    add_report_section(run_dir / "report.html", report)
    return report


def refuse_if_worse(before: dict[str, Any], after: dict[str, Any], limit: float | None) -> None:
    if limit is None:
        return
    name, _, higher = primary_metric({before["metric"]: before["value"], "loss": before["metrics"].get("loss")})
    drop = (before["value"] - after["value"]) if higher else (after["value"] - before["value"])
    if drop > limit:
        raise KilnError(f"compression refused: test {name} went from {before['value']:.4f} to {after['value']:.4f} "
                        f"(a drop of {drop:.4f}, more than max_metric_drop {limit}); nothing was written")
