"""Mask encoding and the differentiable post-processing of synthetic images."""

from __future__ import annotations

import pytest
import torch

from genseg.generators.masks import (
    encode_masks,
    image_to_generator_space,
    mask_channels,
    match_intensity,
    to_image_space,
)


def test_mask_channels_counts_foreground_classes() -> None:
    assert mask_channels(2) == 1 and mask_channels(4) == 3
    with pytest.raises(ValueError, match="at least 2"):
        mask_channels(1)


def test_encode_masks_is_a_foreground_one_hot_in_minus_one_one() -> None:
    labels = torch.randint(0, 3, (2, 8, 8))
    encoded = encode_masks(labels, num_classes=3)
    assert encoded.shape == (2, 2, 8, 8) and encoded.dtype == torch.float32
    for channel, label in enumerate((1, 2)):
        torch.testing.assert_close(encoded[:, channel], (labels == label).float() * 2 - 1)
    background = labels == 0
    assert (encoded.permute(0, 2, 3, 1)[background] == -1).all()


def test_binary_masks_give_one_channel() -> None:
    labels = torch.tensor([[[0, 1], [1, 0]]])
    assert encode_masks(labels, 2).tolist() == [[[[-1.0, 1.0], [1.0, -1.0]]]]


def test_encode_masks_rejects_wrong_input() -> None:
    with pytest.raises(ValueError, match="values 0..3 but num_classes is 3"):
        encode_masks(torch.tensor([[[0, 3]]]), 3)
    with pytest.raises(ValueError, match=r"integer tensor \(B, H, W\)"):
        encode_masks(torch.zeros(1, 1, 4, 4, 4, dtype=torch.long), 2)
    with pytest.raises(ValueError, match="integer tensor"):
        encode_masks(torch.zeros(1, 4, 4), 2)


def test_to_image_space_maps_tanh_range_and_keeps_gradients() -> None:
    generated = torch.tensor([-1.0, 0.0, 1.0], requires_grad=True)
    images = to_image_space(generated)
    assert images.requires_grad
    assert images.tolist() == [0.0, 0.5, 1.0]
    images.sum().backward()
    torch.testing.assert_close(generated.grad, torch.full((3,), 0.5))


def test_image_to_generator_space_inverts_to_image_space() -> None:
    images = torch.rand(2, 3, 4, 4)
    torch.testing.assert_close(to_image_space(image_to_generator_space(images)), images)
    assert image_to_generator_space(torch.tensor([0.0, 1.0])).tolist() == [-1.0, 1.0]


def test_match_intensity_stretches_each_image_to_zero_one() -> None:
    images = torch.rand(3, 2, 8, 8) * 0.3 + torch.tensor([0.1, 0.5, -0.4]).view(3, 1, 1, 1)
    matched = match_intensity(images)
    torch.testing.assert_close(matched.amin(dim=(1, 2, 3)), torch.zeros(3))
    torch.testing.assert_close(matched.amax(dim=(1, 2, 3)), torch.ones(3), atol=1e-4, rtol=0)
    # each image on its own: changing one leaves the others as they were
    images[0] *= 5
    torch.testing.assert_close(match_intensity(images)[1:], matched[1:])


def test_match_intensity_of_a_constant_image_is_finite_zeros() -> None:
    assert torch.equal(match_intensity(torch.full((1, 1, 4, 4), 0.7)), torch.zeros(1, 1, 4, 4))


def test_match_intensity_is_differentiable_everywhere() -> None:
    images = torch.rand(2, 1, 6, 6, requires_grad=True)
    weights = torch.rand(2, 1, 6, 6)
    (match_intensity(images) * weights).sum().backward()
    assert images.grad is not None and (images.grad != 0).float().mean() > 0.9


def test_volumes_are_encoded_and_rescaled_per_volume() -> None:
    labels = torch.zeros(2, 3, 4, 5, dtype=torch.long)
    labels[0, 1, 2, 3] = 2
    encoded = encode_masks(labels, 3)
    assert encoded.shape == (2, 2, 3, 4, 5)
    assert encoded[0, 1, 1, 2, 3] == 1 and encoded[0, 0, 1, 2, 3] == -1 and (encoded[1] == -1).all()
    volumes = torch.stack([torch.linspace(-3, 5, 60).view(1, 3, 4, 5), torch.full((1, 3, 4, 5), 2.0)])
    matched = match_intensity(volumes)
    assert matched[0].min() == 0 and matched[0].max() == pytest.approx(1.0, abs=1e-5)
    assert (matched[1] == 0).all()  # a constant volume maps to zeros, on its own range
