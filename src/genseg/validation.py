"""The validation signal: smooth enough to survive one or two validation images.

Hard Dice on two tiny wounds jumps between 0 and 0.33 from one evaluation to the next (docs/benchmarks.md),
so checkpoint choice and GenSeg's upper level use the soft objective L_seg (cross-entropy + soft
Dice) over all validation pixels, optionally averaged over fixed augmented views of each pair.
Hard Dice is reported beside it.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor, nn

from genseg.augment import draw_and_augment_pairs
from genseg.data import PairTensors
from genseg.losses import segmentation_loss
from genseg.metrics import hard_dice

VIEW_SEED = 12345  # fixed: every validation sees the same views, so scores compare over time


@dataclass
class ValidationSet:
    """Validation pairs plus their fixed augmented views, built once per run."""

    images: Tensor
    masks: Tensor

    @classmethod
    def build(cls, pairs: PairTensors, num_classes: int, views: int) -> ValidationSet:
        """The pairs themselves, plus ``views - 1`` augmented copies drawn from a fixed seed."""
        assert pairs.masks is not None
        images, masks = [pairs.images], [pairs.masks]
        rng = torch.Generator().manual_seed(VIEW_SEED)
        for _ in range(views - 1):
            view_images, view_masks = draw_and_augment_pairs(pairs.images, pairs.masks, num_classes, rng)
            images.append(view_images)
            masks.append(view_masks)
        return cls(torch.cat(images), torch.cat(masks))

    def loss(self, logits: Tensor) -> Tensor:
        """The smooth validation objective for logits of :attr:`images` (differentiable)."""
        return segmentation_loss(logits, self.masks)


@torch.no_grad()
def validate(model: nn.Module, validation: ValidationSet, batch_size: int = 16) -> dict[str, float]:
    """Smooth validation loss (selection criterion) and hard Dice of ``model`` in eval mode."""
    was_training = model.training
    model.eval()
    logits = torch.cat([model(chunk) for chunk in validation.images.split(batch_size)])
    model.train(was_training)
    return {
        "val_loss": float(validation.loss(logits)),
        "val_dice": float(hard_dice(logits, validation.masks)),
    }
