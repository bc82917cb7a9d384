"""The registry, and the contract every registered generator must meet (shared tester)."""

from __future__ import annotations

import io

import pytest
import torch

from genseg.generators import available_generators, create_discriminator, create_generator

# Small settings per registered generator, so the shared checks stay fast on a CPU.
SMALL_OPTIONS = {"pix2pix": {"ngf": 8}}
SIZE = 64


def _generator(name: str, mask_channels: int = 1, image_channels: int = 1, seed: int = 0) -> torch.nn.Module:
    torch.manual_seed(seed)
    return create_generator(name, mask_channels, image_channels, **SMALL_OPTIONS[name])


def _masks(mask_channels: int = 1, batch: int = 2) -> torch.Tensor:
    return (torch.rand(batch, mask_channels, SIZE, SIZE) > 0.5).float() * 2 - 1


def _randomize_arch(generator: torch.nn.Module) -> None:
    with torch.no_grad():
        for alpha in generator.arch_parameters():
            alpha.normal_()


def test_every_generator_has_test_options() -> None:
    assert set(available_generators()) == set(SMALL_OPTIONS)


def test_unknown_name_lists_names_and_suggests() -> None:
    with pytest.raises(ValueError, match=r"available: pix2pix.*Did you mean 'pix2pix'"):
        create_generator("pix2px", 1, 1)
    with pytest.raises(ValueError, match="unknown generator 'gan9000'"):
        create_discriminator("gan9000", 1, 1)


def test_unknown_option_is_named() -> None:
    with pytest.raises(ValueError, match=r"\['ngff'\].*accepted: ngf, num_downs"):
        create_generator("pix2pix", 1, 1, ngff=8)


@pytest.mark.parametrize("name", available_generators())
@pytest.mark.parametrize(("mask_channels", "image_channels"), [(1, 1), (1, 3), (2, 1), (2, 3)])
def test_output_shape_and_tanh_range(name: str, mask_channels: int, image_channels: int) -> None:
    generator = _generator(name, mask_channels, image_channels)
    images = generator(_masks(mask_channels))
    assert images.shape == (2, image_channels, SIZE, SIZE)
    assert images.abs().max() < 1
    critic = create_discriminator(name, mask_channels, image_channels)
    logits = critic(torch.cat([_masks(mask_channels), images], dim=1))
    assert logits.shape[:2] == (2, 1)


@pytest.mark.parametrize("name", available_generators())
def test_arch_and_weight_parameters_partition_parameters(name: str) -> None:
    generator = _generator(name)
    arch = {id(p) for p in generator.arch_parameters()}
    weights = {id(p) for p in generator.weight_parameters()}
    assert not arch & weights
    assert arch | weights == {id(p) for p in generator.parameters()}


@pytest.mark.parametrize("name", available_generators())
def test_gradients_reach_every_weight_and_alpha(name: str) -> None:
    generator = _generator(name)
    _randomize_arch(generator)
    target = torch.rand(2, 1, SIZE, SIZE) * 2 - 1
    (generator(_masks()) - target).abs().mean().backward()
    for p in generator.weight_parameters() + generator.arch_parameters():
        assert p.grad is not None and p.grad.abs().sum() > 0


@pytest.mark.parametrize("name", available_generators())
def test_state_dict_round_trip_restores_alphas_and_outputs(name: str) -> None:
    source = _generator(name, seed=0)
    _randomize_arch(source)
    masks = _masks()
    source(masks)  # a training-mode pass moves the BatchNorm running statistics
    buffer = io.BytesIO()
    torch.save(source.state_dict(), buffer)
    source.eval()

    restored = _generator(name, seed=1).eval()
    assert not torch.allclose(restored(masks), source(masks))
    buffer.seek(0)
    restored.load_state_dict(torch.load(buffer))
    for saved, loaded in zip(source.arch_parameters(), restored.arch_parameters(), strict=True):
        assert torch.equal(saved, loaded)
    assert torch.equal(restored(masks), source(masks))


@pytest.mark.parametrize("name", available_generators())
def test_to_moves_alphas_with_the_module(name: str) -> None:
    generator = _generator(name).to(torch.float64)
    alphas = generator.arch_parameters()
    assert {id(p) for p in alphas} <= {id(p) for p in generator.parameters()}
    assert all(alpha.dtype == torch.float64 for alpha in alphas)
    assert generator(_masks().double()).dtype == torch.float64
