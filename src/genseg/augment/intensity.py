"""Intensity jitter for real images: brightness, contrast, gamma and noise, per sample.

Used by the ``augment`` baseline and for augmented validation views. Every factor is the same for
all channels of a sample, so RGB images keep their colours (a grey pixel stays grey).

As in :mod:`genseg.augment.geometric`, :func:`sample_intensity` draws an
:class:`IntensityParams` from a ``torch.Generator`` and :func:`apply_intensity` is a pure,
deterministic function of the images and those parameters (the noise comes from per-sample seeds
drawn with the parameters).

Example:
    >>> g = torch.Generator().manual_seed(0)
    >>> images = torch.rand(2, 3, 32, 32)
    >>> apply_intensity(images, sample_intensity(2, g)).shape
    torch.Size([2, 3, 32, 32])
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from kornia.enhance import adjust_brightness, adjust_contrast_with_mean_subtraction, adjust_gamma

from genseg.augment.geometric import _check_bounds, _uniform


@dataclass(frozen=True)
class IntensityRanges:
    """Ranges the per-sample intensity parameters are drawn from (uniformly).

    Args:
        brightness: value added to every pixel.
        contrast: factor on the distance of every pixel from the image mean.
        gamma: exponent of the gamma curve x -> x ** gamma.
        noise_std: standard deviation of additive gaussian noise.
        probability: chance that a sample is jittered at all.
    """

    brightness: tuple[float, float] = (-0.1, 0.1)
    contrast: tuple[float, float] = (0.8, 1.2)
    gamma: tuple[float, float] = (0.7, 1.5)
    noise_std: tuple[float, float] = (0.0, 0.03)
    probability: float = 1.0

    def __post_init__(self) -> None:
        if not 0.0 <= self.probability <= 1.0:
            raise ValueError(f"probability must be in [0, 1], got {self.probability}")
        _check_bounds("brightness", self.brightness, -1.0, 1.0)
        _check_bounds("contrast", self.contrast, 0.0, 10.0)
        _check_bounds("gamma", self.gamma, 1e-2, 100.0)
        _check_bounds("noise_std", self.noise_std, 0.0, 1.0)


@dataclass
class IntensityParams:
    """One set of intensity parameters per sample (B samples), all of shape (B,).

    Args:
        brightness: additive shift.
        contrast: factor around the image mean.
        gamma: gamma exponent.
        noise_std: standard deviation of the gaussian noise.
        noise_seed: int64 seed of each sample's noise field, so that applying is deterministic.
    """

    brightness: torch.Tensor
    contrast: torch.Tensor
    gamma: torch.Tensor
    noise_std: torch.Tensor
    noise_seed: torch.Tensor

    def __post_init__(self) -> None:
        batch = self.brightness.shape[0]
        for name, value in vars(self).items():
            if tuple(value.shape) != (batch,):
                raise ValueError(f"IntensityParams.{name} must have shape ({batch},), "
                                 f"got {tuple(value.shape)}")

    @classmethod
    def identity(cls, batch: int, device: torch.device | str | None = None) -> IntensityParams:
        """Parameters that leave every sample unchanged."""
        zeros, ones = torch.zeros(batch, device=device), torch.ones(batch, device=device)
        return cls(brightness=zeros, contrast=ones, gamma=ones.clone(), noise_std=zeros.clone(),
                   noise_seed=torch.zeros(batch, dtype=torch.long, device=device))


def sample_intensity(
    batch: int,
    generator: torch.Generator,
    ranges: IntensityRanges = IntensityRanges(),
    device: torch.device | str | None = None,
) -> IntensityParams:
    """Draw independent intensity parameters for each of ``batch`` samples.

    Args:
        batch: number of samples.
        generator: source of randomness; the draws are made on its device.
        ranges: where each parameter is drawn from.
        device: device of the returned tensors; default the generator's.

    Returns:
        The sampled :class:`IntensityParams`.
    """
    device = generator.device if device is None else device
    seeds = torch.randint(0, 2**62, (batch,), generator=generator, device=generator.device)
    params = IntensityParams(
        brightness=_uniform(generator, (batch,), ranges.brightness),
        contrast=_uniform(generator, (batch,), ranges.contrast),
        gamma=_uniform(generator, (batch,), ranges.gamma),
        noise_std=_uniform(generator, (batch,), ranges.noise_std),
        noise_seed=seeds,
    )
    if ranges.probability < 1.0:  # drawn only then, so the default's random stream is unchanged
        skipped = _uniform(generator, (batch,), (0.0, 1.0)) >= ranges.probability
        identity = IntensityParams.identity(batch, device=generator.device)
        params = IntensityParams(**{name: torch.where(skipped, getattr(identity, name), value)
                                    for name, value in vars(params).items()})
    return IntensityParams(**{name: value.to(device) for name, value in vars(params).items()})


def _noise(images: torch.Tensor, seeds: torch.Tensor) -> torch.Tensor:
    """(B, 1, H, W) standard normal fields, one per seed, the same for all channels of a sample."""
    fields = []
    for seed in seeds.tolist():
        generator = torch.Generator(device=images.device).manual_seed(seed)
        fields.append(torch.randn((1, 1, *images.shape[-2:]), generator=generator,
                                  device=images.device, dtype=images.dtype))
    return torch.cat(fields)


def apply_intensity(images: torch.Tensor, params: IntensityParams) -> torch.Tensor:
    """Brightness, contrast, gamma, then noise, clamped to [0, 1]; differentiable in ``images``.

    Contrast is taken around the image mean (the luminance mean for RGB, as kornia does). Each
    kornia step clamps to [0, 1]; that clamp also zeroes the gradient at black pixels, where the
    gamma curve's slope x ** (gamma - 1) would otherwise be infinite for gamma < 1.

    A volume (B, C, D, H, W) is adjusted as the image (B, C, D * H, W) of its stacked slices: every
    step is per voxel or uses the sample's mean, so that is the volume's own adjustment.

    Args:
        images: (B, C, H, W) float images or (B, C, D, H, W) volumes in [0, 1].
        params: the per-sample parameters.

    Returns:
        The adjusted images in [0, 1], in the input's shape.
    """
    if images.ndim not in (4, 5) or images.shape[0] != params.brightness.shape[0]:
        raise ValueError(f"expected images (B, C, H, W) or (B, C, D, H, W) with B = {params.brightness.shape[0]}, "
                         f"got {tuple(images.shape)}")
    if images.ndim == 5:
        return apply_intensity(images.flatten(2, 3), params).view_as(images)
    x = adjust_brightness(images, params.brightness.to(images))
    x = adjust_contrast_with_mean_subtraction(x, params.contrast.to(images))
    x = adjust_gamma(x, params.gamma.to(images))
    x = x + params.noise_std.to(images).view(-1, 1, 1, 1) * _noise(images, params.noise_seed)
    return x.clamp(0.0, 1.0)


class RandomIntensity:
    """Draw fresh per-sample intensity parameters on every call and apply them.

    Args:
        generator: source of randomness (seed it for reproducible runs).
        ranges: where the parameters are drawn from.
    """

    def __init__(self, generator: torch.Generator, ranges: IntensityRanges = IntensityRanges()) -> None:
        self.generator = generator
        self.ranges = ranges

    def __call__(self, images: torch.Tensor) -> torch.Tensor:
        """Jitter a (B, C, H, W) batch of images in [0, 1]."""
        params = sample_intensity(images.shape[0], self.generator, self.ranges, images.device)
        return apply_intensity(images, params)
