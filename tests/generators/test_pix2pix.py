"""The pix2pix U-Net generator and PatchGAN critic: structure, size, search, noise, and that they learn."""

from __future__ import annotations

import copy

import pytest
import torch
from torch import nn

from genseg.config import GeneratorConfig
from genseg.generators import create_generator
from genseg.generators.cells import DOWN_OPS, UP_OPS, MixedOp
from genseg.generators.gan import discriminator_loss, generator_loss
from genseg.generators.masks import encode_masks, image_to_generator_space
from genseg.generators.pix2pix import PatchDiscriminator, UNetGenerator


def _count(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


def test_size_stays_cpu_friendly() -> None:
    searchable = _count(UNetGenerator(1, 1, ngf=32))
    plain = _count(UNetGenerator(1, 1, ngf=32, searchable=False))
    assert 1_500_000 < plain < 2_000_000
    assert 4_000_000 < searchable < 4_500_000  # the original GenSeg generator: 272 M


def test_input_size_must_be_divisible_by_the_depth() -> None:
    generator = UNetGenerator(1, 1, ngf=4)
    with pytest.raises(ValueError, match="48x48 is not divisible by 2\\*\\*num_downs = 32"):
        generator(torch.zeros(1, 1, 48, 48))
    assert UNetGenerator(1, 1, ngf=4, num_downs=4)(torch.zeros(1, 1, 48, 48)).shape == (1, 1, 48, 48)


@pytest.mark.parametrize("options", [{"num_downs": 1}, {"dropout": 1.0}, {"ngf": 0}])
def test_bad_settings_are_refused(options: dict) -> None:
    with pytest.raises(ValueError):
        UNetGenerator(1, 1, **options)


def test_every_down_and_up_convolution_is_a_cell() -> None:
    generator = UNetGenerator(2, 3, ngf=4, num_downs=5)
    architecture = generator.architecture()
    assert list(architecture) == [f"down.{i}.conv" for i in range(5)] + [f"up.{i}.conv" for i in range(5)]
    # zero alphas: the argmax is the first, plain pix2pix, candidate
    assert set(architecture.values()) == {DOWN_OPS[0], UP_OPS[0]}
    assert len(generator.arch_parameters()) == 10
    assert all(alpha.shape == (3,) and not alpha.any() for alpha in generator.arch_parameters())


def test_discretize_keeps_the_strongest_candidates() -> None:
    generator = UNetGenerator(1, 1, ngf=4, num_downs=4)
    cell = generator.up[0].conv
    with torch.no_grad():
        cell.alpha[UP_OPS.index("subpixel_mlp")] = 1.0
    weights_before = generator.weight_parameters()
    architecture = generator.discretize()
    assert architecture["up.0.conv"] == "subpixel_mlp" and architecture["down.0.conv"] == "conv4x4"
    assert generator.arch_parameters() == []
    assert len(generator.weight_parameters()) == len(weights_before)
    assert generator(torch.zeros(2, 1, 32, 32)).shape == (2, 1, 32, 32)


def test_non_searchable_generator_is_plain_pix2pix() -> None:
    generator = UNetGenerator(1, 1, ngf=4, num_downs=4, searchable=False)
    assert generator.arch_parameters() == []
    assert set(generator.architecture().values()) == {DOWN_OPS[0], UP_OPS[0]}
    assert all(len(op.ops) == 1 for op in generator.modules() if isinstance(op, MixedOp))


def test_dropout_sits_in_the_three_deepest_decoder_blocks() -> None:
    generator = UNetGenerator(1, 1, ngf=4, num_downs=6)
    with_dropout = [i for i, block in enumerate(generator.up) if any(isinstance(m, nn.Dropout) for m in block)]
    assert with_dropout == [3, 4, 5]
    assert not any(isinstance(m, nn.Dropout) for m in UNetGenerator(1, 1, ngf=4, dropout=0).modules())

    masks = torch.zeros(2, 1, 64, 64)
    assert not torch.equal(generator(masks), generator(masks))  # dropout is the noise source
    generator.eval()
    assert torch.equal(generator(masks), generator(masks))


def test_patch_discriminator_sees_70_pixel_patches() -> None:
    critic = PatchDiscriminator(in_channels=2, ndf=4).eval()  # eval: no coupling through batch statistics
    pairs = torch.randn(1, 2, 128, 128, requires_grad=True)
    logits = critic(pairs)
    assert logits.shape == (1, 1, 14, 14)
    logits[0, 0, 7, 7].backward()
    rows = pairs.grad.abs().sum(dim=(0, 1, 3)).nonzero()
    assert rows.max() - rows.min() + 1 == 70


def test_pix2pix_overfits_two_tiny_pairs() -> None:
    labels = torch.zeros(2, 32, 32, dtype=torch.long)
    labels[0, 8:24, 4:14] = 1
    labels[1, 10:20, 16:30] = 1
    masks = encode_masks(labels, num_classes=2)
    real = image_to_generator_space(0.2 + 0.6 * labels.unsqueeze(1).float() + 0.05 * torch.rand(2, 1, 32, 32))
    generator = UNetGenerator(1, 1, ngf=8, num_downs=5)
    critic = PatchDiscriminator(in_channels=2, ndf=8)
    optimizer_g = torch.optim.Adam(generator.parameters(), lr=2e-3, betas=(0.5, 0.999))
    optimizer_d = torch.optim.Adam(critic.parameters(), lr=2e-3, betas=(0.5, 0.999))

    l1 = []
    for _ in range(30):
        fake = generator(masks)
        optimizer_d.zero_grad()
        discriminator_loss(critic, masks, real, fake).backward()
        optimizer_d.step()
        optimizer_g.zero_grad()
        loss, parts = generator_loss(critic, masks, real, fake)
        loss.backward()
        optimizer_g.step()
        l1.append(parts["l1"].item())
    assert sum(l1[-3:]) / 3 < 0.3 * l1[0]


def _encoded_labels() -> torch.Tensor:
    return encode_masks(torch.randint(2, (2, 32, 32), generator=torch.Generator().manual_seed(0)), num_classes=2)


def test_noise_makes_two_draws_for_one_mask_differ() -> None:
    generator = UNetGenerator(1, 1, ngf=4, num_downs=4, dropout=0, noise=3).eval()  # the latent is the only noise
    masks = _encoded_labels()
    assert generator.down[0].conv.ops["conv4x4"].in_channels == 1 + 3
    assert (generator(masks) - generator(masks)).abs().mean() > 1e-3
    latents = generator.sample_latents(2)
    assert latents.shape == (2, 3) and torch.equal(generator(masks, latents), generator(masks, latents))


def test_without_noise_a_forward_draws_no_random_numbers_and_takes_no_latents() -> None:
    generator = UNetGenerator(1, 1, ngf=4, num_downs=4).eval()
    masks = _encoded_labels()
    state = torch.get_rng_state()
    assert torch.equal(generator(masks), generator(masks))
    assert torch.equal(torch.get_rng_state(), state)
    with pytest.raises(ValueError, match="no noise input"):
        generator(masks, torch.zeros(2, 3))


def test_the_default_step_is_the_plain_pix2pix_step() -> None:
    """The data-efficient options off, a step is the paper's: one critic step, one generator step."""
    pix2pix = create_generator(GeneratorConfig("pix2pix", ngf=4, ndf=4), num_classes=2, image_channels=1)
    generator, critic = copy.deepcopy(pix2pix.network), copy.deepcopy(pix2pix.discriminator)
    optimizer_g = torch.optim.Adam(generator.weight_parameters(), lr=2e-4, betas=(0.5, 0.999))
    optimizer_d = torch.optim.Adam(critic.parameters(), lr=2e-4, betas=(0.5, 0.999))
    labels = torch.randint(2, (2, 32, 32), generator=torch.Generator().manual_seed(1))
    images = torch.rand(2, 1, 32, 32, generator=torch.Generator().manual_seed(2))
    for _ in range(2):
        torch.manual_seed(3)
        pix2pix.train_step(images, labels)
        torch.manual_seed(3)
        masks, real = encode_masks(labels, 2), image_to_generator_space(images)
        fake = generator(masks)
        optimizer_d.zero_grad()
        discriminator_loss(critic, masks, real, fake).backward()
        optimizer_d.step()
        optimizer_g.zero_grad()
        generator_loss(critic, masks, real, fake)[0].backward()
        optimizer_g.step()
    for ours, reference in ((pix2pix.network, generator), (pix2pix.discriminator, critic)):
        assert all(torch.equal(p, q) for p, q in zip(ours.parameters(), reference.parameters()))
        assert all(torch.equal(p, q) for p, q in zip(ours.buffers(), reference.buffers()))


# --- volumes ---


@pytest.mark.parametrize("options", [{}, {"spade": True, "noise": 2}])
def test_a_3d_pix2pix_draws_volumes_and_its_critic_judges_3d_patches(options: dict) -> None:
    torch.manual_seed(0)
    generator = create_generator(GeneratorConfig("pix2pix", ngf=4, ndf=4, **options), 3, 1, spatial_dims=3)
    masks = torch.randint(0, 3, (2, 32, 48, 32))
    images = generator.generate(masks)
    assert images.shape == (2, 1, 32, 48, 32) and 0.0 <= images.min() and images.max() <= 1.0
    logits = generator.discriminator(torch.cat([encode_masks(masks, 3), image_to_generator_space(images)], 1))
    assert logits.ndim == 5 and logits.shape[:2] == (2, 1)
    assert all(p.ndim in (1, 5) for p in generator.network.weight_parameters())  # no 2D kernel left
    generator.train_step(torch.rand(2, 1, 32, 48, 32), masks)


def test_a_3d_generator_refuses_images_and_2d_only_options() -> None:
    with pytest.raises(ValueError, match=r"a 3D generator got input of shape \(1, 1, 32, 32\)"):
        UNetGenerator(1, 1, ngf=2, num_downs=4, spatial_dims=3)(torch.zeros(1, 1, 32, 32))
    with pytest.raises(ValueError, match="DiffAugment.*set generator.diffaugment false for volumes"):
        create_generator(GeneratorConfig("pix2pix", ngf=4, diffaugment=True), 2, 1, spatial_dims=3)
    with pytest.raises(ValueError, match="spatial_dims must be 2 .* or 3"):
        UNetGenerator(1, 1, spatial_dims=4)
