"""The torch layers of images (2D) and volumes (3D): the one place the generators tell the two apart.

pix2pix's generator, its cells and its critic are written once and built from :func:`layers` of
their ``spatial_dims``, as MONAI's networks are: a 3D pix2pix is the 2D one with 4 x 4 x 4 kernels,
3D batch norm, trilinear up-sampling and a 3D pixel shuffle.

Example:
    >>> layers(3).conv(1, 8, 3, padding=1)
    Conv3d(1, 8, kernel_size=(3, 3, 3), stride=(1, 1, 1), padding=(1, 1, 1))
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch.nn.functional as F
from monai.networks.utils import pixelshuffle
from torch import Tensor, nn

from genseg.errors import ConfigError


class PixelShuffle3d(nn.Module):
    """Sub-pixel rearrangement of (B, C * r^3, D, H, W) into (B, C, rD, rH, rW): torch has only the
    2D one, MONAI's function does any dimensionality."""

    def __init__(self, factor: int) -> None:
        super().__init__()
        self.factor = factor

    def forward(self, x: Tensor) -> Tensor:
        return pixelshuffle(x, spatial_dims=3, scale_factor=self.factor)


@dataclass(frozen=True)
class Layers:
    """The layer types of one spatial dimensionality.

    Args:
        dims: 2 (images) or 3 (volumes).
        conv: ``nn.Conv2d`` or ``nn.Conv3d``.
        conv_transpose: the transposed convolution.
        batch_norm: the batch normalization.
        avg_pool: the average pooling.
        pixel_shuffle: a module factory taking the up-sampling factor.
        adaptive_avg_pool: the functional area resampling to a given size.
        interpolation: the linear ``nn.Upsample`` mode.
    """

    dims: int
    conv: type[nn.Module]
    conv_transpose: type[nn.Module]
    batch_norm: type[nn.Module]
    avg_pool: type[nn.Module]
    pixel_shuffle: Callable[[int], nn.Module]
    adaptive_avg_pool: Callable[[Tensor, tuple[int, ...]], Tensor]
    interpolation: str


_LAYERS = {
    2: Layers(2, nn.Conv2d, nn.ConvTranspose2d, nn.BatchNorm2d, nn.AvgPool2d, nn.PixelShuffle,
              F.adaptive_avg_pool2d, "bilinear"),
    3: Layers(3, nn.Conv3d, nn.ConvTranspose3d, nn.BatchNorm3d, nn.AvgPool3d, PixelShuffle3d,
              F.adaptive_avg_pool3d, "trilinear"),
}


def layers(spatial_dims: int) -> Layers:
    """The layers of images (``spatial_dims`` 2) or volumes (3)."""
    if spatial_dims not in _LAYERS:
        raise ConfigError(f"spatial_dims must be 2 (images) or 3 (volumes), got {spatial_dims}")
    return _LAYERS[spatial_dims]
