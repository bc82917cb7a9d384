"""The registry, and the contract every kind of generator must meet (shared tester).

Every registered kind, the second one of ``conftest.py`` included, goes through the same checks of
:class:`~genseg.generators.base.MaskToImage`: the images it draws, its parameters, its own
training step, and the state that checkpoints and export keep. pix2pix goes through them with
each of its data-efficient options too, since each changes its networks or its step.
"""

from __future__ import annotations

import io
from typing import Any

import pytest
import torch
from torch import Tensor

from genseg.config import GeneratorConfig
from genseg.generators import MaskToImage, create_generator
from genseg.plugins import GENERATORS

# Small settings per case (a registered kind, or pix2pix with an option), so the checks stay fast on a CPU.
SMALL_SETTINGS: dict[str, dict[str, Any]] = {
    "pix2pix": {"name": "pix2pix", "ngf": 8},
    "pix2pix-diffaugment": {"name": "pix2pix", "ngf": 8, "diffaugment": True},
    "pix2pix-spade": {"name": "pix2pix", "ngf": 8, "spade": True},
    "pix2pix-noise": {"name": "pix2pix", "ngf": 8, "noise": 2, "lambda_ms": 1.0},
    "pix2pix-all": {"name": "pix2pix", "ngf": 8, "diffaugment": True, "spade": True, "noise": 2, "lambda_ms": 1.0},
    "l1conv": {"name": "l1conv", "width": 4},
    "composite": {"name": "composite", "ndf": 8},
}
CASES = sorted(SMALL_SETTINGS)
SIZE = 64


def _generator(case: str, num_classes: int = 2, image_channels: int = 1, seed: int = 0) -> MaskToImage:
    torch.manual_seed(seed)
    return create_generator(GeneratorConfig(**SMALL_SETTINGS[case]), num_classes, image_channels)


def _labels(num_classes: int = 2, batch: int = 2, seed: int = 0) -> Tensor:
    """Label maps of two squares 12 px wide each: structures a compositing generator can paste elsewhere."""
    rng = torch.Generator().manual_seed(seed)
    labels = torch.zeros(batch, SIZE, SIZE, dtype=torch.long)
    for i in range(batch):
        for label in (1, num_classes - 1):
            row, col = torch.randint(8, SIZE - 20, (2,), generator=rng).tolist()
            labels[i, row:row + 12, col:col + 12] = label
    return labels


def _images(image_channels: int = 1, batch: int = 2, seed: int = 0) -> Tensor:
    return torch.rand(batch, image_channels, SIZE, SIZE, generator=torch.Generator().manual_seed(seed))


def _drawn(generator: MaskToImage, num_classes: int = 2, image_channels: int = 1, seed: int = 0) -> Tensor:
    """Images of a draw from real pairs, as the generative methods make them: ``render(draw(...))``."""
    draw = generator.draw(_images(image_channels, seed=seed), _labels(num_classes, seed=seed), None,
                          torch.Generator().manual_seed(seed))
    assert draw.masks.shape == (2, SIZE, SIZE) and draw.masks.max() < num_classes
    return generator.render(draw)


def _randomize_arch(generator: MaskToImage) -> None:
    with torch.no_grad():
        for alpha in generator.arch_parameters():
            alpha.normal_()


def _saved(state: dict[str, Any]) -> dict[str, Any]:
    """``state`` after a trip through a checkpoint file."""
    buffer = io.BytesIO()
    torch.save(state, buffer)
    buffer.seek(0)
    return torch.load(buffer, weights_only=False)


def _same_state(a: dict[str, Any], b: dict[str, Any]) -> bool:
    """Equal state dicts: tensors bit for bit, extra state (a cell's discrete choice) by value."""
    return a.keys() == b.keys() and all(
        torch.equal(a[key], b[key]) if isinstance(a[key], Tensor) else a[key] == b[key] for key in a
    )


def test_every_generator_has_test_options() -> None:
    assert {settings["name"] for settings in SMALL_SETTINGS.values()} == set(GENERATORS)


def test_unknown_name_lists_names_and_suggests() -> None:
    with pytest.raises(ValueError, match=r"available: pix2pix, composite, l1conv; did you mean 'pix2pix'"):
        GeneratorConfig(name="pix2px")


def test_unknown_setting_is_named_with_the_accepted_ones() -> None:
    with pytest.raises(ValueError, match=r"\['ngff'\] for generator 'pix2pix'; accepted: ngf, ndf"):
        GeneratorConfig("pix2pix", ngff=8)
    with pytest.raises(ValueError, match=r"\['ngf'\] for generator 'l1conv'; accepted: width"):
        GeneratorConfig(name="l1conv", ngf=8)  # pix2pix's settings are not every kind's


@pytest.mark.parametrize("case", CASES)
@pytest.mark.parametrize(("num_classes", "image_channels"), [(2, 1), (2, 3), (3, 1), (3, 3)])
def test_generated_images_have_the_shape_and_range_of_real_ones(case: str, num_classes: int,
                                                                 image_channels: int) -> None:
    images = _drawn(_generator(case, num_classes, image_channels), num_classes, image_channels)
    assert images.shape == (2, image_channels, SIZE, SIZE)
    assert images.min() >= 0 and images.max() <= 1


@pytest.mark.parametrize("case", CASES)
def test_arch_and_weight_parameters_partition_the_network(case: str) -> None:
    """Both are the network's own parameters: its state dict saves them and ``.to`` moves them."""
    generator = _generator(case)
    arch = {id(p) for p in generator.arch_parameters()}
    weights = {id(p) for p in generator.weight_parameters()}
    assert not arch & weights
    assert arch | weights == {id(p) for p in generator.network.parameters()}


@pytest.mark.parametrize("case", CASES)
def test_gradients_reach_every_weight_and_alpha_through_the_images(case: str) -> None:
    generator = _generator(case)
    _randomize_arch(generator)
    (_drawn(generator) - _images(seed=7)).abs().mean().backward()
    for p in generator.weight_parameters() + generator.arch_parameters():
        assert p.grad is not None and p.grad.abs().sum() > 0


@pytest.mark.parametrize("case", CASES)
def test_train_step_hands_its_gradient_to_before_step_then_steps(case: str) -> None:
    generator = _generator(case)
    before = [p.detach().clone() for p in generator.weight_parameters()]
    seen: list[bool] = []

    def before_step() -> None:  # where GenSeg's feedback joins the gradient
        seen.append(all(p.grad is not None for p in generator.weight_parameters())
                    and all(torch.equal(p, b) for p, b in zip(generator.weight_parameters(), before)))

    scalars = generator.train_step(_images(), _labels(), before_step=before_step)
    assert seen == [True]
    assert scalars and all(isinstance(value, float) for value in scalars.values())
    assert any(not torch.equal(p, b) for p, b in zip(generator.weight_parameters(), before))


@pytest.mark.parametrize("case", CASES)
def test_state_dict_resumes_training_bit_for_bit(case: str) -> None:
    source = _generator(case, seed=0)
    _randomize_arch(source)
    source.train_step(_images(seed=1), _labels(seed=1))
    restored = _generator(case, seed=1)
    restored.load_state_dict(_saved(source.state_dict()))
    for generator in (source, restored):
        torch.manual_seed(2)  # pix2pix's dropout, latents and DiffAugment draws
        generator.train_step(_images(seed=3), _labels(seed=3))
    assert _same_state(source.network.state_dict(), restored.network.state_dict())


@pytest.mark.parametrize("case", CASES)
def test_network_state_alone_restores_the_images(case: str) -> None:
    """What best.pt and final.pt keep is all that export needs."""
    source = _generator(case, seed=0)
    _randomize_arch(source)
    source.train_step(_images(), _labels())
    exported = _generator(case, seed=1)
    exported.network.load_state_dict(_saved(source.network.state_dict()))
    drawn = []
    for generator in (source, exported):
        torch.manual_seed(4)
        with torch.no_grad():
            drawn.append(_drawn(generator, seed=5))
    assert torch.equal(*drawn)
