"""Test-time augmentation: the softmax maps of mirrored views, mirrored back and averaged.

nnU-Net mirrors at inference along the axes its training mirrored, and only those: a model never
shown an up-down flip is not invariant to one (on the hippocampus slices, averaging the up-down
views halved the Dice). :func:`training_mirrors` takes the views from the training augmentation:
left-right where it flipped, and the half turn (and with a flip, up-down) where it rotated over
the full circle. In 2D (and on the slices of a volume cut along ``--axis``) that is at most 4
views; each is a full forward pass, so inference costs that many times one.

Example:
    >>> model = torch.nn.Conv2d(1, 2, 3, padding=1)
    >>> mirrored_probabilities(model, torch.rand(1, 1, 8, 8)).shape
    torch.Size([1, 2, 8, 8])
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from genseg.augment.geometric import GeometricRanges

Mirrors = tuple[tuple[int, ...], ...]
"""The flipped dimensions of each view, e.g. ``((), (-1,))``: as is, and left-right."""

MIRRORS_2D: Mirrors = ((), (-1,), (-2,), (-2, -1))
"""Every 2D mirror: none, width, height, both."""


def training_mirrors(ranges: GeometricRanges | None) -> Mirrors:
    """The mirrored views a segmenter trained under ``ranges`` has seen (``None``: no augmentation).

    The geometric augmentation flips left-right only; up-down is in its reach only through a
    rotation over the full circle (the half turn is up-down and left-right together).
    """
    if ranges is None:
        return ((),)
    flips = ranges.flip_probability > 0
    half_turn = ranges.probability > 0 and ranges.rotate[0] <= -180.0 and ranges.rotate[1] >= 180.0
    views: list[tuple[int, ...]] = [()]
    views += [(-1,)] if flips else []
    views += [(-2, -1)] if half_turn else []
    views += [(-2,)] if flips and half_turn else []
    return tuple(views)


@torch.no_grad()
def mirrored_probabilities(model: nn.Module, images: Tensor, mirrors: Mirrors = MIRRORS_2D) -> Tensor:
    """The mean softmax map of ``model`` over the mirrored views of ``images`` (B, C, H, W)."""
    total = torch.zeros(())
    for dims in mirrors:
        view = images.flip(dims) if dims else images
        probabilities = torch.softmax(model(view), dim=1)
        total = total + (probabilities.flip(dims) if dims else probabilities)
    return total / len(mirrors)
