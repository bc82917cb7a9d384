"""SPADE: normalization whose scale and shift are drawn from the mask, at every decoder scale.

Park, Liu, Wang and Zhu, "Semantic image synthesis with spatially-adaptive normalization" (CVPR
2019): a plain normalization washes the layout out of the activations, and a generator that
sees the mask only at its input must carry it through every layer. SPADE normalizes the
features without a learned affine and modulates them with a scale gamma and a shift beta that
two small convolutions predict, pixel by pixel, from the mask resized to the features' size:

    SPADE(h, m) = BN(h) * (1 + gamma(m)) + beta(m)

so the layout is re-injected at every scale. In the pix2pix U-Net it replaces the decoder's
BatchNorm (:class:`~genseg.generators.pix2pix.UNetGenerator` with ``spade=True``); the
conditioning is the mask encoding, with the noise channels beside it when the generator has
noise (the latent then modulates every scale too).

Example:
    >>> norm = SPADE(channels=8, condition_channels=1)
    >>> norm(torch.randn(2, 8, 16, 16), torch.randn(2, 1, 64, 64)).shape
    torch.Size([2, 8, 16, 16])
"""

from __future__ import annotations

from torch import Tensor, nn

from genseg.generators.layers import layers


class SPADE(nn.Module):
    """Spatially-adaptive normalization of ``channels`` feature maps by a condition of ``condition_channels``.

    Args:
        channels: channels of the normalized features.
        condition_channels: channels of the condition (the mask encoding, and noise if any).
        hidden: width of the common layer before gamma and beta (Park et al.: 128); default
            ``channels``, so it scales with the generator's width.
        spatial_dims: 2 for images, 3 for volumes.
    """

    def __init__(self, channels: int, condition_channels: int, hidden: int | None = None,
                 spatial_dims: int = 2) -> None:
        super().__init__()
        hidden = hidden or channels
        nets = layers(spatial_dims)
        self.resample = nets.adaptive_avg_pool
        self.norm = nets.batch_norm(channels, affine=False)
        self.condition_layer = nn.Sequential(nets.conv(condition_channels, hidden, 3, padding=1), nn.ReLU())
        self.gamma = nets.conv(hidden, channels, 3, padding=1)
        self.beta = nets.conv(hidden, channels, 3, padding=1)

    def forward(self, features: Tensor, condition: Tensor) -> Tensor:
        """Normalize ``features`` (B, channels, h, w) and modulate them by ``condition`` (B, condition_channels, H, W)
        (one more spatial axis in 3D).

        The condition is area-averaged down to h x w (Park et al. take the nearest pixel): a
        structure smaller than a cell still shows as a fraction instead of vanishing.
        """
        condition = self.resample(condition, features.shape[2:])
        hidden = self.condition_layer(condition)
        return self.norm(features) * (1 + self.gamma(hidden)) + self.beta(hidden)
