"""From samples of any size to square training tensors (or volumes to one patch shape), and back.

Images are resized with antialiased bilinear interpolation. Label maps are never interpolated
as numbers (that would invent class 1 between classes 0 and 2): each class becomes a one-hot
channel, the channels are area-averaged, and every pixel takes the class with the largest share.
Background loses ties, so a one-pixel line survives a 2x downsampling; structures thinner than
half the downsampling factor still vanish, so keep thin-structure data (vessels) near full size.

Whole volumes are not resized: each is padded, centred, to the run's patch (D, H, W), or to a
larger canvas where a volume exceeds the patch (training then crops patches from it), zero image
and background label outside it, so voxels keep their size and spacing.

Example:
    >>> pairs = to_tensors(samples, size=128, num_classes=2)  # doctest: +SKIP
    >>> pairs.images.shape, pairs.masks.shape  # doctest: +SKIP
    (torch.Size([9, 1, 128, 128]), torch.Size([9, 128, 128]))
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from genseg.data.sample import Sample

# Above float32 rounding of the shares, below any real difference (a multiple of
# 1 / pixels per window) for windows of up to a million pixels.
_BACKGROUND_TIE_MARGIN = 1e-6


@dataclass
class PairTensors:
    """Images and masks of several samples at one square size.

    Args:
        images: float32 (N, C, S, S) in [0, 1], or (N, C, D, H, W) volumes.
        masks: int64 (N, S, S) or (N, D, H, W) label maps, or ``None`` for unlabeled images.
        case_ids: the case of each row (volume slices repeat their volume's id).
    """

    images: torch.Tensor
    masks: torch.Tensor | None
    case_ids: list[str]

    def to(self, device: torch.device) -> PairTensors:
        """The same pairs on ``device``."""
        masks = None if self.masks is None else self.masks.to(device)
        return PairTensors(self.images.to(device), masks, self.case_ids)


def to_tensors(samples: Iterable[Sample], size: int | tuple[int, int, int], num_classes: int) -> PairTensors:
    """Resize samples to ``size`` x ``size`` (or pad whole volumes to the patch ``size``) and stack them.

    Args:
        samples: loaded samples, all with masks or all without; images are resized as they come,
            so an iterator (:func:`~genseg.data.iter_samples`) holds one full-size image at a time.
        size: the square side, or the (D, H, W) patch of whole volumes (:func:`volume_canvas`).
        num_classes: classes in the masks (for the one-hot label resize).

    Returns:
        The stacked tensors, in sample order.
    """
    samples = iter(samples)
    first = next(samples, None)
    if first is None:
        raise ValueError("no samples to convert")
    if first.is_volume:
        if isinstance(size, int):
            raise ValueError("whole volumes are padded to a (D, H, W) patch, not resized to a side")
        return _padded_volumes([first, *samples], size)
    assert isinstance(size, int)
    size_hw = (size, size)
    images, masks, case_ids = [], [], []
    for sample in itertools.chain([first], samples):
        if (sample.mask is None) != (first.mask is None):
            raise ValueError("some samples have masks and some do not; load them all with or all without")
        images.append(_resize_image(torch.from_numpy(sample.image), size_hw))
        if sample.mask is not None:
            masks.append(resize_labels(torch.from_numpy(sample.mask), size_hw, num_classes))
        case_ids.append(sample.case_id)
    return PairTensors(images=torch.stack(images), masks=torch.stack(masks) if masks else None, case_ids=case_ids)


def resize_labels(labels: torch.Tensor, size: tuple[int, ...], num_classes: int, mode: str = "area") -> torch.Tensor:
    """Resize label maps by one-hot encoding, interpolation of the class shares and argmax, so that a
    label is never averaged as a number (the background loses ties).

    Args:
        labels: integer tensor (..., *spatial) with values 0..num_classes-1.
        size: the new spatial shape: (height, width), or (depth, height, width) for volumes.
        num_classes: number of classes K.
        mode: how the shares are interpolated: ``area`` (images) or ``trilinear`` (volumes to another spacing).

    Returns:
        int64 tensor (..., *size) with the same label values.
    """
    labels, spatial = labels.long(), len(size)
    if tuple(labels.shape[-spatial:]) == tuple(size):
        return labels
    if labels.numel() and (labels.min() < 0 or labels.max() >= num_classes):
        raise ValueError(f"labels must lie in 0..{num_classes - 1}, got {labels.min()}..{labels.max()}")
    flat = labels.reshape(-1, *labels.shape[-spatial:])
    one_hot = F.one_hot(flat, num_classes).movedim(-1, 1).float()
    corners = {"align_corners": False} if mode in ("bilinear", "trilinear") else {}
    shares = F.interpolate(one_hot, size=tuple(size), mode=mode, **corners)
    shares[:, 0] -= _BACKGROUND_TIE_MARGIN
    return shares.argmax(dim=1).reshape(*labels.shape[:-spatial], *size)


def resize_probabilities(probabilities: torch.Tensor, size_hw: tuple[int, int]) -> torch.Tensor:
    """Resize class probabilities (N, K, h, w) bilinearly, e.g. back to an image's original size.

    Bilinear weights are non-negative and sum to one, so the result stays a distribution.
    """
    return F.interpolate(probabilities, size=size_hw, mode="bilinear", align_corners=False, antialias=True)


def _resize_image(image: torch.Tensor, size_hw: tuple[int, int]) -> torch.Tensor:
    """Resize one (C, H, W) image with antialiased bilinear interpolation."""
    if tuple(image.shape[-2:]) == tuple(size_hw):
        return image.float()
    return F.interpolate(image[None].float(), size=size_hw, mode="bilinear", align_corners=False, antialias=True)[0]


def volume_offsets(shape: Sequence[int], patch: Sequence[int]) -> tuple[int, ...]:
    """Where a volume of ``shape`` starts inside the patch it is padded to, centred."""
    return tuple((side - own) // 2 for own, side in zip(shape, patch))


def volume_canvas(shapes: Sequence[Sequence[int]], patch: Sequence[int], multiple: int = 16) -> tuple[int, int, int]:
    """The (D, H, W) volumes of these shapes are padded to: the patch, grown where a volume is larger
    (in steps of ``multiple``, so the canvas still goes through the U-Net whole)."""
    largest = [max(own) for own in zip(*shapes)]
    return tuple(side if most <= side else multiple * -(-most // multiple) for side, most in zip(patch, largest))


def _padded_volumes(samples: Sequence[Sample], patch: tuple[int, int, int]) -> PairTensors:
    canvas = volume_canvas([sample.image.shape[1:] for sample in samples], patch)
    channels = samples[0].image.shape[0]
    images = torch.zeros(len(samples), channels, *canvas)
    masks = None if samples[0].mask is None else torch.zeros(len(samples), *canvas, dtype=torch.long)
    for row, sample in enumerate(samples):
        window = tuple(slice(start, start + own)
                       for start, own in zip(volume_offsets(sample.image.shape[1:], canvas), sample.image.shape[1:]))
        images[(row, slice(None), *window)] = torch.from_numpy(sample.image).float()
        if masks is not None:
            masks[(row, *window)] = torch.from_numpy(sample.mask)
    return PairTensors(images=images, masks=masks, case_ids=[sample.case_id for sample in samples])
