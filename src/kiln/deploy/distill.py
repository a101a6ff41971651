"""Knowledge distillation as a training task on kiln's one Trainer: a student network learns from
the hard labels and from the teacher's softened outputs (Hinton et al.: loss = alpha · hard +
(1 − alpha) · T² · KL(teacher_T ‖ student_T); binary outputs use soft-target cross-entropy, numeric
outputs the squared gap to the teacher's prediction). The student shares the teacher's fitted
preprocessing, so it is saved as an ordinary kiln model directory."""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from kiln.data.preprocessor import TensorData
from kiln.models import build_network
from kiln.runtime import seed_everything
from kiln.supervised import Model
from kiln.supervised.config import load_supervised_config
from kiln.supervised.task import TableTask


class DistillTask(TableTask):
    """TableTask whose loss mixes the hard labels with the teacher's temperature-softened outputs."""

    def __init__(self, teacher: nn.Module, outputs: list[Any], train: TensorData, validation: TensorData | None, cfg: Any,
                 temperature: float, alpha: float) -> None:
        super().__init__(outputs, train, validation, cfg)
        self.teacher, self.temperature, self.alpha = teacher.eval(), temperature, alpha

    def loss(self, net: nn.Module, batch: TensorData) -> tuple[torch.Tensor, float]:
        logits = net(batch.inputs)
        with torch.no_grad():
            teacher = self.teacher(batch.inputs)
        t = self.temperature
        total = torch.zeros((), device=next(iter(logits.values())).device)
        for f in self.outputs:
            student, soft = logits[f.name], teacher[f.name].float()
            hard = f.loss(student, batch.targets[f.name])
            if f.type == "category":
                gap = F.kl_div(F.log_softmax(student / t, -1), F.softmax(soft / t, -1), reduction="batchmean") * t * t
            elif f.type == "binary":
                gap = F.binary_cross_entropy_with_logits(student / t, torch.sigmoid(soft / t)) * t * t
            else:
                gap = F.mse_loss(student, soft)
            total = total + self.alpha * hard + (1.0 - self.alpha) * gap
            self.seen[f.name].append(student.detach())
        return total, len(batch.targets[self.outputs[0].name])


def train_student(teacher: Model, student_model: dict[str, Any], frames: dict[str, Any], temperature: float, alpha: float,
                  trainer_changes: dict[str, Any] | None = None, progress: bool | str = False) -> Model:
    """A student with `student_model` as its `model:` section, trained by distillation (alpha 1.0: hard labels only)."""
    from kiln.training import Trainer

    raw = teacher.config.model_dump(mode="json")
    raw["model"] = student_model
    raw["trainer"] = {**raw["trainer"], **(trainer_changes or {})}
    config = load_supervised_config(raw)
    pre = teacher.preprocessor
    seed_everything(config.trainer.seed)
    net = build_network(config.model, pre.inputs, pre.outputs)
    validation = pre.transform(frames["validation"]) if "validation" in frames else None
    task = DistillTask(teacher.net.cpu(), pre.outputs, pre.transform(frames["train"]), validation, config.trainer, temperature, alpha)
    trainer = Trainer(net, config.trainer, torch.device("cpu"), progress=progress)
    history = trainer.fit(task)
    student = Model(config, pre, trainer.net)
    student.history = history
    return student
