"""Test-time augmentation: mirrored views, mirrored back, averaged."""

from __future__ import annotations

import torch
from torch import Tensor, nn

from genseg.tta import MIRRORS_2D, mirrored_probabilities


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
