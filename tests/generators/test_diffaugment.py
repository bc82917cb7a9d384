"""DiffAugment of the critic's inputs: one draw for real and generated pairs, the mask kept on its image."""

from __future__ import annotations

from dataclasses import replace

import torch
from torch import Tensor

from genseg.config import GeneratorConfig
from genseg.generators import create_generator
from genseg.generators.diffaugment import (
    CriticAugmentation,
    augment_critic_input,
    cut_out,
    sample_critic_augmentation,
    translate,
)
from genseg.generators.masks import encode_masks

SIZE = 32


def _labels(batch: int = 2, seed: int = 0) -> Tensor:
    labels = torch.zeros(batch, SIZE, SIZE, dtype=torch.long)
    generator = torch.Generator().manual_seed(seed)
    for i in range(batch):  # a rectangle per mask, somewhere near the middle
        top, left = torch.randint(4, 12, (2,), generator=generator).tolist()
        labels[i, top:top + 14, left:left + 10] = 1
    return labels


def _without_colour(params: CriticAugmentation) -> CriticAugmentation:
    ones = torch.ones_like(params.saturation)
    return replace(params, brightness=torch.zeros_like(ones), saturation=ones, contrast=ones)


def _without_geometry(params: CriticAugmentation) -> CriticAugmentation:
    return replace(params, shift=torch.zeros_like(params.shift), cutout_size=(0, 0))


def test_parameters_stay_in_diffaugments_ranges() -> None:
    params = sample_critic_augmentation(500, SIZE, 64)
    assert params.shift[:, 0].abs().max() == SIZE // 8 and params.shift[:, 1].abs().max() == 64 // 8
    assert params.cutout_size == (SIZE // 2, 32)
    assert params.brightness.abs().max() <= 0.5 and 0 <= params.saturation.min() and params.saturation.max() <= 2
    assert 0.5 <= params.contrast.min() and params.contrast.max() <= 1.5


def test_translation_moves_whole_pixels_and_fills_with_zeros() -> None:
    x = torch.zeros(2, 1, 8, 8)
    x[:, 0, 3, 3] = 1.0
    moved = translate(x + 0.5, torch.tensor([[2, -1], [0, 0]]))
    assert moved[0, 0, 5, 2] == 1.5 and moved[0, 0, :2].eq(0).all() and moved[0, 0, :, -1:].eq(0).all()
    assert torch.equal(moved[1], x[1] + 0.5)


def test_cutout_zeroes_one_square_in_every_channel() -> None:
    x = torch.ones(1, 3, 8, 8)
    cut = cut_out(x, torch.tensor([[-2, 5]]), (4, 4))
    assert cut[0, :, :2, 5:].eq(0).all()  # the part of the square inside the image
    assert cut.eq(0).sum() == 3 * 2 * 3


def test_geometry_moves_the_mask_with_the_image_and_colour_touches_the_image_only() -> None:
    masks = encode_masks(_labels(), num_classes=2)
    pairs = torch.cat([masks, masks], dim=1)  # an image equal to its mask: aligned pixel for pixel
    params = sample_critic_augmentation(2, SIZE, SIZE)

    geometry_only = augment_critic_input(pairs, _without_colour(params), image_channels=1)
    assert not torch.equal(geometry_only, pairs)
    assert torch.equal(geometry_only[:, 0], geometry_only[:, 1])  # still aligned

    colour_only = augment_critic_input(pairs, _without_geometry(params), image_channels=1)
    assert torch.equal(colour_only[:, 0], masks[:, 0]) and not torch.equal(colour_only[:, 1], masks[:, 0])


def test_the_generators_gradient_passes_through_except_where_cut_out() -> None:
    images = torch.rand(2, 3, SIZE, SIZE, requires_grad=True)
    pairs = torch.cat([encode_masks(_labels(), 2), images], dim=1)
    params = sample_critic_augmentation(2, SIZE, SIZE)
    colour = augment_critic_input(pairs, _without_geometry(params), image_channels=3)
    assert torch.autograd.grad(colour[:, 1:].square().sum(), images)[0].abs().gt(0).all()
    params = replace(_without_colour(params), shift=torch.zeros(2, 2, dtype=torch.long))
    augment_critic_input(pairs, params, image_channels=3).sum().backward()
    cut = cut_out(torch.ones(2, 1, SIZE, SIZE), params.cutout_corner, params.cutout_size) == 0
    assert images.grad.abs().sum(dim=1, keepdim=True)[~cut].gt(0).all()
    assert images.grad.abs().sum(dim=1, keepdim=True)[cut].eq(0).all()


def _critic_inputs(**options: object) -> list[Tensor]:
    """The pairs pix2pix's critic sees in one step: real and generated in its step, generated in G's."""
    generator = create_generator(GeneratorConfig("pix2pix", ngf=4, ndf=4, **options), num_classes=2, image_channels=1)
    seen: list[Tensor] = []
    generator.discriminator.register_forward_pre_hook(lambda _, inputs: seen.append(inputs[0].detach()))
    generator.train_step(torch.rand(2, 1, SIZE, SIZE), _labels())
    return seen


def test_real_and_generated_pairs_reach_the_critic_under_one_draw() -> None:
    real, fake, fake_in_generator_step = _critic_inputs(diffaugment=True)
    encoded = encode_masks(_labels(), 2)
    assert not torch.equal(real[:, :1], encoded)  # augmented...
    assert torch.equal(real[:, :1], fake[:, :1]) and torch.equal(fake[:, :1], fake_in_generator_step[:, :1])
    cut = [pairs.eq(0).all(dim=1) for pairs in (real, fake, fake_in_generator_step)]  # ...by the same geometry
    assert cut[0].any() and torch.equal(cut[0], cut[1]) and torch.equal(cut[1], cut[2])


def test_without_diffaugment_the_critic_sees_the_pairs_as_they_are() -> None:
    real, fake, _ = _critic_inputs()
    assert torch.equal(real[:, :1], encode_masks(_labels(), 2)) and torch.equal(fake[:, :1], real[:, :1])
