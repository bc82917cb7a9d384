"""``semisup``: mean teacher (Tarvainen & Valpola, NeurIPS 2017) with the pool's unlabeled images.

The student (the segmenter) learns from the augmented labeled pairs plus a consistency loss: on
unlabeled images, its softmax under one intensity jitter should match that of the teacher, an
exponential moving average of the student, under another. Both views share one geometric
augmentation, so their predictions stay pixel-aligned. The consistency weight ramps up with the
usual sigmoid schedule over the first 40 % of the iterations (the settings:
:class:`~genseg.methods.options.MeanTeacherOptions`). The step is the stepper's, the
consistency its extra term: the unlabeled images pass through the student on their own, so the
labeled pairs see the batch statistics they see in every other method.
"""

from __future__ import annotations

import copy
import math
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from genseg.augment import apply_intensity, draw_and_augment_pairs, sample_intensity
from genseg.errors import ConfigError
from genseg.methods.base import Method, TrainingContext


class MeanTeacher(Method):
    """Labeled pairs + teacher-student consistency on the pool's other images (masks never used)."""

    name = "semisup"
    needs_unlabeled = True
    volumes = True

    def __init__(self, context: TrainingContext) -> None:
        super().__init__(context)
        unlabeled = context.batches.unlabeled
        if unlabeled is None or unlabeled.images.shape[0] == 0:
            raise ConfigError("semisup needs unlabeled images: the pool of the split file must hold "
                             "more cases than the budget")
        self.settings = context.config.method.settings
        self.student = context.stepper.segmenter
        self.teacher = copy.deepcopy(self.student).requires_grad_(False)

    def consistency_weight(self, iteration: int) -> float:
        ramp = self.context.config.train.iterations * self.settings.ramp_up
        progress = min(1.0, iteration / ramp) if ramp > 0 else 1.0
        return self.settings.consistency_weight * math.exp(-5.0 * (1.0 - progress) ** 2)

    def step(self, iteration: int) -> dict[str, float]:
        images, masks = self.context.batches.augmented()
        student_view, teacher_view = self._unlabeled_views()
        with torch.no_grad():
            self.teacher.train()
            teacher_probabilities = torch.softmax(self.teacher(teacher_view), dim=1)
        weight = self.consistency_weight(iteration)

        def consistency(student: nn.Module) -> tuple[torch.Tensor, dict[str, float]]:
            term = F.mse_loss(torch.softmax(student(student_view), dim=1), teacher_probabilities)
            return weight * term, {"consistency": term.item()}

        scalars = self.context.stepper.step(images, masks, extra=consistency)
        self._update_teacher(iteration)
        return scalars

    def _unlabeled_views(self) -> tuple[torch.Tensor, torch.Tensor]:
        """Two intensity views (student, teacher) of one geometric augmentation of unlabeled images."""
        batches = self.context.batches
        images = batches.unlabeled_images()
        blank = torch.zeros(images.shape[0], *images.shape[2:], dtype=torch.long, device=images.device)
        images, _ = draw_and_augment_pairs(images, blank, batches.num_classes, batches.rng)
        return tuple(apply_intensity(images, sample_intensity(images.shape[0], batches.rng, device=batches.device))
                     for _ in range(2))

    @torch.no_grad()
    def _update_teacher(self, iteration: int) -> None:
        decay = min(1.0 - 1.0 / (iteration + 1), self.settings.teacher_decay)  # a plain average while young
        for teacher, student in zip(self.teacher.state_dict().values(), self.student.state_dict().values()):
            if teacher.is_floating_point():
                teacher.mul_(decay).add_(student, alpha=1.0 - decay)
            else:
                teacher.copy_(student)

    def state_dict(self) -> dict[str, Any]:
        return {"teacher": self.teacher.state_dict()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.teacher.load_state_dict(state["teacher"])
