"""The validation signal: fixed augmented views, and scores taken in eval mode."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from genseg.data import PairTensors
from genseg.losses import segmentation_loss
from genseg.validation import ValidationSet, validate


@pytest.fixture
def pairs() -> PairTensors:
    generator = torch.Generator().manual_seed(0)
    masks = torch.zeros(2, 32, 32, dtype=torch.int64)
    masks[0, 8:20, 6:18] = 1
    masks[1, 14:30, 10:24] = 1
    images = 0.3 + 0.4 * masks[:, None].float() + 0.05 * torch.rand(2, 1, 32, 32, generator=generator)
    return PairTensors(images, masks, ["a", "b"])


def test_one_view_is_the_pairs_themselves(pairs: PairTensors) -> None:
    validation = ValidationSet.build(pairs, num_classes=2, views=1)
    assert torch.equal(validation.images, pairs.images) and torch.equal(validation.masks, pairs.masks)


def test_extra_views_are_fixed_augmented_copies(pairs: PairTensors) -> None:
    validation = ValidationSet.build(pairs, num_classes=2, views=3)
    again = ValidationSet.build(pairs, num_classes=2, views=3)

    assert validation.images.shape == (6, 1, 32, 32) and validation.masks.shape == (6, 32, 32)
    assert torch.equal(validation.images[:2], pairs.images) and torch.equal(validation.masks[:2], pairs.masks)
    assert not torch.equal(validation.masks[2:4], pairs.masks)  # the views are really augmented
    assert set(validation.masks.unique().tolist()) <= {0, 1}
    assert torch.equal(validation.images, again.images) and torch.equal(validation.masks, again.masks)


class _NoisyInTraining(nn.Module):
    """A segmenter whose output is random in train mode (dropout) and fixed in eval mode."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(1, 2, kernel_size=3, padding=1)
        self.dropout = nn.Dropout(0.5)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.dropout(self.conv(images))


@pytest.mark.parametrize("training", [True, False])
def test_validate_scores_in_eval_mode_and_restores_the_mode(pairs: PairTensors, training: bool) -> None:
    model = _NoisyInTraining().train(training)
    validation = ValidationSet.build(pairs, num_classes=2, views=2)

    scores = validate(model, validation)

    assert set(scores) == {"val_loss", "val_dice"}
    assert model.training is training
    with torch.no_grad():
        logits = model.eval()(validation.images)
    assert scores["val_loss"] == pytest.approx(float(segmentation_loss(logits, validation.masks)))
    predicted, target = logits.argmax(dim=1) == 1, validation.masks == 1  # Dice pooled over the views' pixels
    dice = 2 * (predicted & target).sum() / (predicted.sum() + target.sum())
    assert scores["val_dice"] == pytest.approx(float(dice), abs=1e-4)
    assert validate(model.train(training), validation) == scores  # eval mode: no dropout noise
