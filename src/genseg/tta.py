"""Test-time augmentation: the softmax maps of mirrored views, mirrored back and averaged.

nnU-Net mirrors along every spatial axis at inference; in 2D (and on the slices of a volume cut
along ``--axis``) that is 4 views: as is, left-right, up-down, and both. Every view is a full
forward pass, so inference costs 4x.

Example:
    >>> model = torch.nn.Conv2d(1, 2, 3, padding=1)
    >>> mirrored_probabilities(model, torch.rand(1, 1, 8, 8)).shape
    torch.Size([1, 2, 8, 8])
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

MIRRORS_2D: tuple[tuple[int, ...], ...] = ((), (-1,), (-2,), (-2, -1))
"""The flipped dimensions of each view: none, width, height, both."""


@torch.no_grad()
def mirrored_probabilities(model: nn.Module, images: Tensor, mirrors: tuple[tuple[int, ...], ...] = MIRRORS_2D
                           ) -> Tensor:
    """The mean softmax map of ``model`` over the mirrored views of ``images`` (B, C, H, W)."""
    total = torch.zeros(())
    for dims in mirrors:
        view = images.flip(dims) if dims else images
        probabilities = torch.softmax(model(view), dim=1)
        total = total + (probabilities.flip(dims) if dims else probabilities)
    return total / len(mirrors)
