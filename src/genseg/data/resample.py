"""Whole volumes to one voxel spacing, and class probabilities back to each volume's own grid.

3D training sees every volume at the plan's spacing (nnU-Net's: the median of the budget's), so a
voxel is the same size in millimetres in every case and the 3D kernels see one scale. Images are
resampled trilinearly; label maps are never interpolated as numbers: each class becomes a one-hot
channel, the channels are resampled trilinearly and every voxel takes the class with the largest
share (:func:`genseg.data.tensors.resize_labels`, which resizes 2D label maps the same way). Predictions go back
to the input's own grid as probabilities, before the argmax, so metrics and written files are in
the geometry of the file that was read.

A volume whose grid at the target spacing has its own shape is kept as it is (no resampling of a
fraction of a voxel).

Example:
    >>> resampled_shape((20, 30, 10), spacing=(1.0, 1.0, 3.0), target=(1.0, 1.0, 1.5))
    (20, 30, 20)
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace

import torch
import torch.nn.functional as F

from genseg.data.sample import Sample
from genseg.data.tensors import resize_labels


def resampled_shape(shape: Sequence[int], spacing: Sequence[float], target: Sequence[float]) -> tuple[int, ...]:
    """The (D, H, W) a volume of ``shape`` voxels of ``spacing`` mm has at ``target`` mm: the same extent."""
    return tuple(max(1, round(side * own / wanted)) for side, own, wanted in zip(shape, spacing, target))


def resample_sample(sample: Sample, target: Sequence[float]) -> Sample:
    """A whole volume at ``target`` spacing: image trilinear, label map by class shares, ROI nearest.

    Args:
        sample: a whole volume (``image`` (C, D, H, W)) with its ``spacing``.
        target: the voxel size in mm along the volume's three axes.
    """
    if not sample.is_volume or sample.spacing is None:
        raise ValueError(f"{sample.case_id}: only a whole volume with a known spacing can be resampled")
    shape = resampled_shape(sample.image.shape[1:], sample.spacing, target)
    if shape == tuple(sample.image.shape[1:]):
        return sample
    image = F.interpolate(torch.from_numpy(sample.image)[None].float(), size=shape, mode="trilinear",
                          align_corners=False)[0].clamp_(0, 1)
    mask = None if sample.mask is None else resize_labels(
        torch.from_numpy(sample.mask), shape, max(int(sample.mask.max()) + 1, 2), mode="trilinear").numpy()
    roi = None if sample.roi is None else F.interpolate(
        torch.from_numpy(sample.roi)[None, None].float(), size=shape, mode="nearest")[0, 0].numpy() > 0.5
    return replace(sample, image=image.numpy(), mask=mask, roi=roi, spacing=tuple(float(side) for side in target))


def probabilities_to_shape(probabilities: torch.Tensor, shape: Sequence[int]) -> torch.Tensor:
    """Class probabilities (K, D, H, W) on another grid of the same extent, trilinearly: weights that are
    non-negative and sum to one keep them a distribution."""
    if tuple(probabilities.shape[1:]) == tuple(shape):
        return probabilities
    return F.interpolate(probabilities[None], size=tuple(shape), mode="trilinear", align_corners=False)[0]
