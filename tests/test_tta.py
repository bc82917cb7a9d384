"""Test-time augmentation: mirrored views, mirrored back, averaged."""

from __future__ import annotations

from dataclasses import replace

import torch
from torch import Tensor, nn

from genseg.augment import augmentation_ranges
from genseg.config import MethodConfig, RunConfig
from genseg.data import LabelMap
from genseg.evaluation import TrainedSegmenter
from genseg.tta import MIRRORS_2D, mirrored_probabilities, training_mirrors


class LeftBright(nn.Module):
    """Class 1 where the pixel lies in the left half of the image: not mirror-symmetric."""

    def forward(self, images: Tensor) -> Tensor:
        width = images.shape[-1]
        left = (torch.arange(width) < width // 2).float().expand_as(images[:, 0])
        return torch.stack([torch.zeros_like(left), 10 * (2 * left - 1)], dim=1)


def test_a_mirror_symmetric_model_is_unchanged_and_views_are_mirrored_back() -> None:
    images = torch.rand(2, 1, 8, 8)
    symmetric = nn.Conv2d(1, 3, 1)  # a 1x1 convolution commutes with every flip
    plain = torch.softmax(symmetric(images), dim=1)
    assert torch.allclose(mirrored_probabilities(symmetric, images), plain, atol=1e-6)
    # left-right views see the left half on the right: mirrored back, half the views vote each way
    averaged = mirrored_probabilities(LeftBright(), images)
    left_right = sum(1 for dims in MIRRORS_2D if -1 in dims) / len(MIRRORS_2D)
    assert torch.allclose(averaged[:, 1], torch.full((2, 8, 8), 1 - left_right), atol=1e-4)


def test_views_follow_the_mirrors_training_drew() -> None:
    standard, _ = augmentation_ranges("standard")  # horizontal flips, rotation within 15 degrees
    nnunet, _ = augmentation_ranges("nnunet")  # no flip preset, but rotation over the full circle
    assert training_mirrors(None) == ((),)
    assert training_mirrors(standard) == ((), (-1,))
    assert training_mirrors(replace(standard, flip_probability=0.0)) == ((),)
    assert training_mirrors(replace(nnunet, flip_probability=0.0)) == ((), (-2, -1))
    assert set(training_mirrors(nnunet)) == set(MIRRORS_2D)
    assert training_mirrors(replace(nnunet, probability=0.0)) == ((), (-1,))


class TopBright(nn.Module):
    """Class 1 in the top half: changed by an up-down flip, not by a left-right one."""

    def forward(self, images: Tensor) -> Tensor:
        height = images.shape[-2]
        top = (torch.arange(height) < height // 2).float()[:, None].expand_as(images[:, 0])
        return torch.stack([torch.zeros_like(top), 10 * (2 * top - 1)], dim=1)


def test_a_segmenter_trained_with_left_right_flips_is_never_averaged_up_down() -> None:
    config = RunConfig(method=MethodConfig("augment"))
    segmenter = TrainedSegmenter(TopBright(), config, LabelMap((0, 255)), iteration=0, in_channels=1, tta=True)
    images = torch.rand(1, 1, 8, 8)
    # the up-down views would vote the other way and leave 0.5 everywhere
    assert torch.allclose(segmenter.probabilities(images), torch.softmax(TopBright()(images), dim=1))
    config.method = MethodConfig("supervised")  # never augmented: TTA is the single view
    assert segmenter.mirrors == ((),)
