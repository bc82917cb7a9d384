"""Intensity jitter: sampling, identity, range, colour preservation, determinism, gradients."""

from __future__ import annotations

import pytest
import torch

from genseg.augment.intensity import (
    IntensityParams,
    IntensityRanges,
    RandomIntensity,
    apply_intensity,
    sample_intensity,
)


def _params(batch: int, **values: float) -> IntensityParams:
    """Identity parameters with some fields set to the same value for every sample."""
    params = IntensityParams.identity(batch)
    for name, value in values.items():
        getattr(params, name).fill_(value)
    return params


def test_sampling_is_seeded_and_within_ranges() -> None:
    ranges = IntensityRanges()
    first = sample_intensity(256, torch.Generator().manual_seed(3), ranges)
    second = sample_intensity(256, torch.Generator().manual_seed(3), ranges)
    for name, value in vars(first).items():
        assert torch.equal(value, getattr(second, name)), name
    for name in ("brightness", "contrast", "gamma", "noise_std"):
        low, high = getattr(ranges, name)
        value = getattr(first, name)
        assert low <= value.min() and value.max() <= high, name
        assert value.max() - value.min() > 0.8 * (high - low), f"{name} does not cover its range"
    assert first.noise_seed.unique().numel() == 256


def test_identity_parameters_leave_images_unchanged() -> None:
    images = torch.rand(3, 3, 16, 16)
    images[:, :, :4] = 0.0  # black background stays black
    assert torch.allclose(apply_intensity(images, IntensityParams.identity(3)), images, atol=1e-6)


def test_output_stays_in_unit_range() -> None:
    images = torch.rand(4, 1, 16, 16)
    images[:, :, :4], images[:, :, -4:] = 0.0, 1.0
    params = IntensityParams(
        brightness=torch.tensor([-0.1, 0.1, 0.1, -0.1]),
        contrast=torch.tensor([1.2, 1.2, 0.8, 0.8]),
        gamma=torch.tensor([0.7, 1.5, 0.7, 1.5]),
        noise_std=torch.full((4,), 0.03),
        noise_seed=torch.arange(4),
    )
    out = apply_intensity(images, params)
    assert out.min() >= 0.0 and out.max() <= 1.0
    assert out.min() == 0.0 and out.max() == 1.0  # clamped, not rescaled


def test_each_sample_gets_its_own_parameters() -> None:
    params = sample_intensity(4, torch.Generator().manual_seed(0))
    out = apply_intensity(torch.full((4, 1, 8, 8), 0.5), params)
    assert all(not torch.allclose(out[0], out[i]) for i in (1, 2, 3))


def test_contrast_scales_colour_differences_alike() -> None:
    images = 0.3 + 0.4 * torch.rand(2, 3, 8, 8)  # mid-range: nothing is clamped
    out = apply_intensity(images, _params(2, contrast=1.2))

    def chroma(x: torch.Tensor) -> torch.Tensor:
        return x - x.mean(dim=1, keepdim=True)

    assert torch.allclose(chroma(out), 1.2 * chroma(images), atol=1e-5)


def test_grey_images_stay_grey() -> None:
    grey = torch.rand(3, 1, 12, 12).expand(3, 3, 12, 12)
    out = apply_intensity(grey, sample_intensity(3, torch.Generator().manual_seed(1)))
    assert not torch.allclose(out, grey)
    assert torch.allclose(out[:, 1:], out[:, :1].expand(3, 2, 12, 12), atol=1e-6)


def test_applying_is_deterministic_and_noise_follows_the_seed() -> None:
    images = torch.full((1, 1, 16, 16), 0.5)
    params = _params(1, noise_std=0.03)
    assert torch.equal(apply_intensity(images, params), apply_intensity(images, params))
    reseeded = _params(1, noise_std=0.03, noise_seed=1)
    assert not torch.equal(apply_intensity(images, params), apply_intensity(images, reseeded))
    assert (apply_intensity(images, params) - images).std().item() == pytest.approx(0.03, rel=0.3)


def test_gradient_is_finite_at_black_pixels() -> None:
    images = torch.rand(2, 1, 8, 8)
    images[:, :, :3] = 0.0
    images.requires_grad_(True)
    apply_intensity(images, _params(2, gamma=0.7)).sum().backward()
    assert images.grad is not None and images.grad.isfinite().all()
    assert images.grad[:, :, 3:].abs().min() > 0


def test_random_intensity_is_reproducible() -> None:
    images = torch.rand(2, 3, 8, 8)
    first = RandomIntensity(torch.Generator().manual_seed(7))(images)
    second = RandomIntensity(torch.Generator().manual_seed(7))(images)
    assert torch.equal(first, second) and not torch.equal(first, images)


def test_bad_ranges_raise_value_error() -> None:
    with pytest.raises(ValueError, match="gamma"):
        IntensityRanges(gamma=(0.0, 1.0))


def test_a_volume_gets_its_contrast_around_the_whole_volume_mean() -> None:
    volumes = torch.full((1, 1, 2, 4, 4), 0.2)
    volumes[:, :, 1] = 0.6  # per-slice means would leave each slice flat and unchanged
    params = IntensityParams.identity(1)
    params.contrast = torch.tensor([1.5])
    adjusted = apply_intensity(volumes, params)
    assert adjusted.shape == volumes.shape
    assert torch.allclose(adjusted[:, :, 0], torch.full((1, 1, 4, 4), 0.1))
    assert torch.allclose(adjusted[:, :, 1], torch.full((1, 1, 4, 4), 0.7))
