"""DiffAugment of the critic's inputs: one random colour, translation and cutout for real and generated pairs.

Zhao, Liu, Lin, Zhu and Han, "Differentiable augmentation for data-efficient GAN training"
(NeurIPS 2020): trained on a handful of images, the critic memorizes them and its verdict stops
teaching the generator anything. Augmenting every critic input, real and generated, in the
critic's step and in the generator's, with operations the generator's gradient passes through,
keeps the critic from memorizing without teaching the generator to draw the augmentations.
Their policy for few-shot training is all three of colour (brightness, saturation, contrast),
translation (up to 1/8 of the side, zero fill) and cutout (a square of half the side).

pix2pix's critic sees pairs [mask encoding, image]: the geometric transforms (translation,
cutout) move both parts alike, so the pair stays aligned; colour touches the image channels
only, since a mask has no colour. A step samples one :class:`CriticAugmentation` and applies it
to every critic input, so real and generated pairs differ in nothing but their content.

Plain torch rather than kornia: DiffAugment's operations (an additive brightness, integer
shifts with zero fill, cutout) are a few lines each, and applying one sampled parameter set to
two batches with the colour part on some channels only would need kornia's internal parameter
plumbing. The parameters are drawn from torch's global CPU generator, which the training loop
and pre-training save for resume.

Example:
    >>> pairs = torch.zeros(2, 2, 32, 32)
    >>> augment_critic_input(pairs, sample_critic_augmentation(2, 32, 32), image_channels=1).shape
    torch.Size([2, 2, 32, 32])
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor

#: Largest translation, as a fraction of the side (DiffAugment's default).
TRANSLATION_RATIO = 0.125
#: Side of the cut-out square, as a fraction of the side (DiffAugment's default).
CUTOUT_RATIO = 0.5


@dataclass(frozen=True)
class CriticAugmentation:
    """One draw of DiffAugment's parameters for a batch of B critic inputs.

    Args:
        brightness: (B, 1, 1, 1) added to the image, U(-0.5, 0.5).
        saturation: (B, 1, 1, 1) factor on each pixel's deviation from its channel mean, U(0, 2).
        contrast: (B, 1, 1, 1) factor on the deviation from the image's mean, U(0.5, 1.5).
        shift: (B, 2) integer shift (rows, columns) in pixels; what enters is zero.
        cutout_corner: (B, 2) top-left corner (row, column) of the zeroed square; it may lie
            partly outside the image.
        cutout_size: (rows, columns) of the zeroed square.
    """

    brightness: Tensor
    saturation: Tensor
    contrast: Tensor
    shift: Tensor
    cutout_corner: Tensor
    cutout_size: tuple[int, int]


def sample_critic_augmentation(batch: int, height: int, width: int,
                               device: torch.device | str = "cpu") -> CriticAugmentation:
    """DiffAugment's random parameters for ``batch`` inputs of ``height`` x ``width`` (colour
    factors on ``device``, integer geometry on the CPU, where it is read)."""

    def uniform(low: float, high: float) -> Tensor:
        return (low + (high - low) * torch.rand(batch, 1, 1, 1)).to(device)

    sides = torch.tensor([height, width])
    max_shift = (sides * TRANSLATION_RATIO + 0.5).long()
    size = (sides * CUTOUT_RATIO + 0.5).long()
    # DiffAugment draws the square's centre in [0, side] (an odd side one short) and clips it.
    centre = (torch.rand(batch, 2) * (sides + 1 - size % 2)).long()
    return CriticAugmentation(
        brightness=uniform(-0.5, 0.5),
        saturation=uniform(0.0, 2.0),
        contrast=uniform(0.5, 1.5),
        shift=(torch.rand(batch, 2) * (2 * max_shift + 1)).long() - max_shift,
        cutout_corner=centre - size // 2,
        cutout_size=(int(size[0]), int(size[1])),
    )


def adjust_colour(images: Tensor, params: CriticAugmentation) -> Tensor:
    """Brightness, saturation and contrast of images in [-1, 1] (B, C, H, W), differentiably."""
    images = images + params.brightness
    channel_mean = images.mean(dim=1, keepdim=True)
    images = (images - channel_mean) * params.saturation + channel_mean  # a no-op on one channel
    image_mean = images.mean(dim=(1, 2, 3), keepdim=True)
    return (images - image_mean) * params.contrast + image_mean


def translate(x: Tensor, shift: Tensor) -> Tensor:
    """Shift each of the B maps of ``x`` (B, C, H, W) by its whole-pixel ``shift`` (B, 2), zero fill."""
    height, width = x.shape[-2:]
    margin = int(shift.abs().max()) if shift.numel() else 0
    padded = F.pad(x, (margin, margin, margin, margin))
    return torch.stack([padded[i, :, margin - dy:margin - dy + height, margin - dx:margin - dx + width]
                        for i, (dy, dx) in enumerate(shift.tolist())])


def cut_out(x: Tensor, corner: Tensor, size: tuple[int, int]) -> Tensor:
    """Zero a ``size`` square at each map's ``corner`` (B, 2) in ``x`` (B, C, H, W), every channel."""
    rows = torch.arange(x.shape[-2])
    columns = torch.arange(x.shape[-1])
    inside_rows = (rows >= corner[:, :1]) & (rows < corner[:, :1] + size[0])  # (B, H)
    inside_columns = (columns >= corner[:, 1:]) & (columns < corner[:, 1:] + size[1])  # (B, W)
    keep = ~(inside_rows[:, :, None] & inside_columns[:, None, :])
    return x * keep[:, None].to(x)


def augment_critic_input(pairs: Tensor, params: CriticAugmentation, image_channels: int) -> Tensor:
    """DiffAugment of critic inputs ``pairs`` = concat(mask encoding, image), (B, M + C, H, W).

    Colour goes to the last ``image_channels`` channels only; translation and cutout move every
    channel alike, so the mask stays aligned with its image.
    """
    masks, images = pairs[:, :-image_channels], pairs[:, -image_channels:]
    pairs = torch.cat([masks, adjust_colour(images, params)], dim=1)
    return cut_out(translate(pairs, params.shift), params.cutout_corner, params.cutout_size)
