"""Segmentation networks created by name: ``create_segmenter("unet", in_channels=1, classes=2)``.

Every segmenter maps float images (B, C, H, W) in [0, 1] to logits (B, K, H, W), where K counts
the background (a binary task has K = 2 and is trained with a softmax). All of them are built
with random weights (nothing is downloaded) and are twice differentiable on CPU and GPU, which the
GenSeg hypergradient needs. :data:`genseg.plugins.SEGMENTERS` is the one list: a builder
(:mod:`genseg.segmenters.networks`) and a torch-free ``Options`` (:mod:`genseg.segmenters.options`)
per name. Adding one is a builder, its options and a line in :mod:`genseg.plugins`.

Example:
    >>> import torch
    >>> model = create_segmenter("unet", in_channels=1, classes=2, base=8)
    >>> check_input_size("unet", 128)
    >>> model(torch.rand(2, 1, 128, 128)).shape
    torch.Size([2, 2, 128, 128])
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from genseg.errors import ConfigError
from genseg.plugins import SEGMENTERS

if TYPE_CHECKING:
    from torch import nn

    from genseg.config import SegmenterConfig

def create_segmenter(name: str, in_channels: int, classes: int, *, spatial_dims: int = 2, **options: Any
                     ) -> nn.Module:
    """Build a registered segmenter with random weights.

    Args:
        name: one of :data:`SEGMENTERS`.
        in_channels: image channels C (1 for grayscale, 3 for RGB).
        classes: output channels K, background included (2 for a binary task).
        spatial_dims: 2 for images, 3 for volumes (B, C, D, H, W), where the ``Options`` allow it.
        **options: the segmenter's ``Options`` (e.g. ``base`` for ``"unet"``, ``encoder`` for
            ``"deeplabv3plus"``).

    Returns:
        A module mapping (B, C, H, W) images to (B, K, H, W) logits (volumes to volumes in 3D).

    Raises:
        ValueError: unknown name, unknown option, invalid channel/class counts, or 3D asked of a
            2D-only segmenter.
    """
    checked = SEGMENTERS.check_options(name, options)
    if spatial_dims not in getattr(type(checked), "spatial_dims", (2,)):
        volume_ones = [other for other in SEGMENTERS.names if 3 in getattr(SEGMENTERS.options_class(other),
                                                                              "spatial_dims", (2,))]
        raise ConfigError(f"segmenter {name!r} is 2D only; for volumes use one of {', '.join(volume_ones)} "
                          "(or set data.dims 2 to train on slices)")
    if in_channels < 1:
        raise ConfigError(f"in_channels must be at least 1, got {in_channels}")
    if classes < 2:
        raise ConfigError(f"classes counts the background and must be at least 2 (2 for a binary task), got {classes}")
    builder = SEGMENTERS.load(name)
    # 2D builders registered from outside need not take spatial_dims.
    return builder(in_channels, classes, checked, spatial_dims=3) if spatial_dims == 3 else builder(
        in_channels, classes, checked)


def segmenter_from_config(config: SegmenterConfig, in_channels: int, classes: int, spatial_dims: int = 2
                          ) -> nn.Module:
    """The segmenter a run's config names, with its options: the one place training and inference build it."""
    return create_segmenter(config.name, in_channels, classes, spatial_dims=spatial_dims, **config.options)


def check_input_size(name: str, size: int | tuple[int, int]) -> None:
    """Raise ValueError if images of this side (or (H, W)) cannot go through segmenter ``name``.

    Args:
        name: a registered segmenter name.
        size: square side, or (height, width).
    """
    options = SEGMENTERS.options_class(name)
    sides = (size, size) if isinstance(size, int) else tuple(size)
    for side in sides:
        if side < options.min_size or side % options.size_multiple:
            raise ConfigError(
                f"segmenter {name!r} needs image sides that are multiples of {options.size_multiple} "
                f"and at least {options.min_size}, got {size}; resize the images (e.g. data size 128)"
            )


__all__ = ["check_input_size", "create_segmenter", "segmenter_from_config"]
