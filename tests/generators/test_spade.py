"""SPADE in the pix2pix decoder: the mask modulates every decoder scale, and A still gets its hypergradient."""

from __future__ import annotations

import torch
from torch import Tensor, nn

from genseg.config import GeneratorConfig
from genseg.generators import create_generator
from genseg.generators.masks import encode_masks
from genseg.generators.pix2pix import UNetGenerator
from genseg.generators.spade import SPADE
from genseg.losses import segmentation_loss

SIZE = 32


def _labels(seed: int) -> Tensor:
    return torch.randint(2, (2, SIZE, SIZE), generator=torch.Generator().manual_seed(seed))


def _spade_inputs(generator: nn.Module, masks: Tensor) -> list[tuple[SPADE, Tensor, Tensor]]:
    """Each SPADE of ``generator`` with the features and the condition it normalized for ``masks``."""
    seen: list[tuple[SPADE, Tensor, Tensor]] = []
    hooks = [module.register_forward_pre_hook(lambda m, inputs: seen.append((m, *inputs)))
             for module in generator.modules() if isinstance(module, SPADE)]
    generator(masks)
    for hook in hooks:
        hook.remove()
    return seen


def test_spade_replaces_the_decoders_batch_norm_only() -> None:
    generator = UNetGenerator(2, 1, ngf=4, num_downs=4, spade=True, noise=3)
    decoder_norms = [block.norm for block in generator.up[1:]]
    assert all(isinstance(norm, SPADE) and norm.condition_layer[0].in_channels == 2 + 3 for norm in decoder_norms)
    assert all(isinstance(block.norm, nn.BatchNorm2d) for block in generator.down[1:-1])
    assert not any(isinstance(m, SPADE) for m in UNetGenerator(2, 1, ngf=4, num_downs=4).modules())


def test_the_mask_modulates_every_decoder_scale() -> None:
    generator = UNetGenerator(1, 1, ngf=4, num_downs=4, spade=True).eval()
    masks, other = encode_masks(_labels(0), 2), encode_masks(_labels(1), 2)
    seen = _spade_inputs(generator, masks)
    assert sorted(features.shape[-1] for _, features, _ in seen) == [SIZE // 8, SIZE // 4, SIZE // 2]
    for spade, features, condition in seen:
        assert torch.equal(condition, masks)  # the mask itself, resized inside
        assert not torch.allclose(spade(features, masks), spade(features, other))  # same features, other mask


def test_a_structure_smaller_than_a_cell_still_reaches_the_coarsest_scale() -> None:
    spade = SPADE(channels=4, condition_channels=1).eval()
    features = torch.randn(1, 4, 2, 2)
    background = -torch.ones(1, 1, SIZE, SIZE)
    dot = background.clone()
    dot[0, 0, 5, 5] = 1.0  # one pixel, 1/256 of a cell of the 2 x 2 scale
    assert not torch.equal(spade(features, background), spade(features, dot))


def test_the_hypergradient_reaches_A_through_a_spade_generator() -> None:
    generator = create_generator(GeneratorConfig("pix2pix", ngf=4, spade=True), num_classes=2, image_channels=1)
    segmenter = nn.Conv2d(1, 2, 3, padding=1)
    labels = _labels(0)
    arch = generator.arch_parameters()
    assert arch  # GenSeg's arch upper level needs them
    loss = segmentation_loss(segmenter(generator.generate(labels)), labels)
    assert all(grad.abs().sum() > 0 for grad in torch.autograd.grad(loss, arch))
