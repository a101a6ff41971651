"""Knowledge distillation as a training task on kiln's one Trainer: a student network learns from
the hard labels and from the teacher's softened outputs (Hinton et al.: loss = alpha · hard +
(1 − alpha) · T² · KL(teacher_T ‖ student_T); binary outputs use soft-target cross-entropy, numeric
outputs the squared gap to the teacher's prediction). The teacher's outputs are computed once, on
the student's own training rows (un-augmented: the teacher runs in eval mode), which may come from
another, unlabelled file (`distill.data`): rows without labels take the teacher's prediction as
their hard label. The student shares the teacher's fitted preprocessing, so it is saved as an
ordinary kiln model directory."""

from __future__ import annotations

from typing import Any

import pandas as pd
import torch
import torch.nn.functional as F
from torch import nn

from kiln.data.preprocessor import TensorData
from kiln.errors import KilnError
from kiln.models import build_network
from kiln.runtime import seed_everything
from kiln.supervised import Model
from kiln.supervised.config import load_supervised_config
from kiln.supervised.task import TableTask

SOFT = "teacher:"  # key prefix of the teacher's logits among a batch's targets


def pseudo_labels(feature: Any, logits: torch.Tensor) -> torch.Tensor:
    """The teacher's prediction in the form of the feature's encoded target."""
    if feature.type == "category":
        return logits.argmax(-1)
    if feature.type == "binary":
        return (logits.squeeze(-1) > 0).float()
    return logits.squeeze(-1).float()


def with_teacher(teacher: Model, outputs: list[Any], data: TensorData) -> TensorData:
    """`data` plus the teacher's logits (and its predictions where `data` has no labels) among the targets."""
    logits = teacher._logits(data)  # eval mode, no gradients; any runtime (torch, int8, onnx)
    targets = dict(data.targets)
    for f in outputs:
        targets[SOFT + f.name] = logits[f.name].float()
        targets.setdefault(f.name, pseudo_labels(f, logits[f.name]))
    return TensorData(data.inputs, targets)


class DistillTask(TableTask):
    """TableTask whose loss mixes the hard labels with the teacher's temperature-softened outputs."""

    def __init__(self, outputs: list[Any], train: TensorData, validation: TensorData | None, cfg: Any,
                 temperature: float, alpha: float) -> None:
        super().__init__(outputs, train, validation, cfg)
        self.temperature, self.alpha = temperature, alpha

    def loss(self, net: nn.Module, batch: TensorData) -> tuple[torch.Tensor, float]:
        logits = net(batch.inputs)
        t = self.temperature
        total = torch.zeros((), device=next(iter(logits.values())).device)
        for f in self.outputs:
            student, soft = logits[f.name], batch.targets[SOFT + f.name]
            hard = f.loss(student, batch.targets[f.name])
            if f.type == "category":
                gap = F.kl_div(F.log_softmax(student / t, -1), F.softmax(soft / t, -1), reduction="batchmean") * t * t
            elif f.type == "binary":
                gap = F.binary_cross_entropy_with_logits(student / t, torch.sigmoid(soft / t)) * t * t
            else:
                gap = F.mse_loss(student, soft)
            total = total + self.alpha * hard + (1.0 - self.alpha) * gap
        self.epoch_logits.add(batch.rows, {f.name: logits[f.name] for f in self.outputs})
        return total, len(batch.targets[self.outputs[0].name])


def student_rows(teacher: Model, source: Any) -> TensorData:
    """A `distill.data` file as tensors in the teacher's preprocessing; labels are used when every output column is there."""
    from kiln.data import as_frame, clean_frame

    from kiln.config import expand_path

    pre = teacher.preprocessor
    frame = as_frame(expand_path(source, "compress.distill.data") if isinstance(source, str) else source)
    labelled = all(f.name in frame.columns for f in pre.outputs)
    frame, _ = clean_frame(frame, pre.inputs, pre.outputs if labelled else [], drop_duplicates=False, where="distill.data")
    if frame.empty:
        raise KilnError("distill.data: no usable rows")
    return pre.transform(frame, targets=labelled, where="distill.data")


def train_student(teacher: Model, student_model: dict[str, Any], frames: dict[str, pd.DataFrame], temperature: float, alpha: float,
                  trainer_changes: dict[str, Any] | None = None, progress: bool | str = False,
                  rows: TensorData | None = None) -> Model:
    """A student with `student_model` as its `model:` section, trained by distillation (alpha 1.0: hard labels only)
    on `rows` (default: the teacher's training split), validated on the teacher's validation split."""
    from kiln.training import Trainer

    raw = teacher.config.model_dump(mode="json")
    raw["model"] = student_model
    raw["trainer"] = {**raw["trainer"], **(trainer_changes or {})}
    config = load_supervised_config(raw)
    pre = teacher.preprocessor
    seed_everything(config.trainer.seed)
    net = build_network(config.model, pre.inputs, pre.outputs)
    validation = pre.transform(frames["validation"]) if "validation" in frames else None
    train = with_teacher(teacher, pre.outputs, rows if rows is not None else pre.transform(frames["train"]))
    task = DistillTask(pre.outputs, train, validation, config.trainer, temperature, alpha)
    trainer = Trainer(net, config.trainer, torch.device("cpu"), progress=progress)
    history = trainer.fit(task)
    student = Model(config, pre, trainer.net)
    student.history = history
    return student
