"""The compositing generator: where it pastes, what the mask becomes, how its appearance acts."""

from __future__ import annotations

from dataclasses import fields

import pytest
import torch
from torch import Tensor

from genseg.augment import IntensityParams
from genseg.config import GeneratorConfig
from genseg.generators.base import SyntheticDraw
from genseg.generators.composite import Appearance, Compositor, host_region, padding_region, place

SIZE = 48
PAD = 12  # black columns on the right of every image: padding, as FUSeg's letterboxed photos have


def _pairs(channels: int = 1, num_classes: int = 2, batch: int = 4, seed: int = 0,
           width: int = 6) -> tuple[Tensor, Tensor]:
    """Textured images with a black band of padding, each with one square structure of each class."""
    rng = torch.Generator().manual_seed(seed)
    images = 0.3 + 0.4 * torch.rand(batch, channels, SIZE, SIZE, generator=rng)
    images[..., SIZE - PAD:] = 0.0
    labels = torch.zeros(batch, SIZE, SIZE, dtype=torch.long)
    for i in range(batch):
        for label in range(1, num_classes):
            row, col = torch.randint(4, SIZE - PAD - 4 - width, (2,), generator=rng).tolist()
            labels[i, row:row + width, col:col + width] = label
            images[i, :, row:row + width, col:col + width] = 0.9  # the structure is bright: its texture is known
    return images, labels


def _without_jitter(draw: SyntheticDraw) -> SyntheticDraw:
    """The draw with the intensity augmentation left out, so the composite itself can be read."""
    identity = IntensityParams.identity(len(draw))
    draw.inputs.update({f"intensity.{f.name}": getattr(identity, f.name) for f in fields(IntensityParams)})
    return draw


def _compositor(channels: int = 1, num_classes: int = 2, **options: object) -> Compositor:
    torch.manual_seed(0)
    return Compositor(GeneratorConfig("composite", ndf=8, **options), num_classes, channels)


def test_padding_is_the_dark_region_connected_to_the_border() -> None:
    images, _ = _pairs()
    images[0, :, 20:24, 20:24] = 0.0  # dark, but inside the content: not padding
    padding = padding_region(images)
    assert padding[:, 0, :, SIZE - PAD:].eq(1).all()
    assert padding[:, 0, :, :SIZE - PAD].eq(0).all()


@pytest.mark.parametrize(("channels", "num_classes"), [(1, 2), (3, 2), (1, 3), (3, 3)])
def test_mask_is_the_union_and_nothing_lands_on_padding(channels: int, num_classes: int) -> None:
    images, labels = _pairs(channels, num_classes)
    compositor = _compositor(channels, num_classes, pastes=2)
    draw = _without_jitter(compositor.draw(images, labels, 6, torch.Generator().manual_seed(1)))
    footprints = draw.inputs["footprint.0"] + draw.inputs["footprint.1"]
    assert footprints.sum() > 0, "something was pasted"
    pasted = footprints[:, 0] > 0
    target = draw.inputs["target_labels"]
    assert torch.equal(draw.masks > 0, (target > 0) | pasted)  # the union
    assert torch.equal(draw.masks[~pasted], target[~pasted])  # the target's labels where nothing was pasted
    assert set(draw.masks.unique().tolist()) <= set(range(num_classes))
    assert (footprints * (1 - draw.inputs["content"])).sum() == 0  # never on padding
    with torch.no_grad():
        rendered, unpasted = compositor.render(draw), compositor.unpasted(draw)
    outside = (draw.inputs["content"] == 0).expand_as(rendered)
    assert torch.equal(rendered[outside], unpasted[outside])  # the padding's pixels are the target's own
    assert rendered.shape == (6, channels, SIZE, SIZE) and 0 <= rendered.min() and rendered.max() <= 1


def test_pasted_texture_is_the_source_texture_at_the_initial_appearance() -> None:
    """Plain copy-paste: inside the footprint, away from its soft edge, the bright source structure."""
    images, labels = _pairs(width=12)
    compositor = _compositor()
    draw = _without_jitter(compositor.draw(images, labels, 6, torch.Generator().manual_seed(2)))
    with torch.no_grad():
        rendered = compositor.render(draw)
    footprint = draw.inputs["footprint.0"]
    interior = -torch.nn.functional.max_pool2d(-footprint, 9, stride=1, padding=4) > 0  # 4 sigma from the edge
    assert interior.sum() > 0
    torch.testing.assert_close(rendered[interior], draw.inputs["source.0"][interior], atol=1e-3, rtol=0)


def test_host_region_keeps_to_tissue_near_the_targets_own_structures() -> None:
    images, labels = _pairs(batch=1)
    images[0, :, :, :4] = 0.05  # a dark strip beside the tissue (a sheet), not dark enough to be padding
    region = host_region(images, labels, 1 - padding_region(images))
    assert region[0, 0, :, :4].sum() == 0  # another colour than the tissue around the structure
    assert region[0, 0][labels[0] > 0].eq(1).all()
    empty = host_region(images, torch.zeros_like(labels), 1 - padding_region(images))
    assert torch.equal(empty, 1 - padding_region(images))  # without structures: all the content


def test_place_moves_a_footprint_into_its_region_or_reports_it_cannot() -> None:
    footprint = torch.zeros(2, 1, 16, 16)
    footprint[:, :, 1:4, 1:4] = 1
    region = torch.zeros(2, 1, 16, 16)
    region[0, :, 10:15, 10:15] = 1  # room for it
    region[1, :, 10:12, 10:12] = 1  # too small
    shifts, found = place(footprint, region, torch.Generator().manual_seed(0))
    assert found.tolist() == [True, False]
    moved = torch.roll(footprint[0, 0], tuple(shifts[0].tolist()), dims=(0, 1))
    assert (moved * region[0, 0]).sum() >= 0.9 * 9


def test_alpha_is_a_soft_edge_of_the_footprint_whose_width_is_the_parameter() -> None:
    footprint = torch.zeros(1, 1, 32, 32)
    footprint[..., 8:24, 8:24] = 1
    narrow, wide = Appearance(1, feather=0.5), Appearance(1, feather=3.0)
    for appearance in (narrow, wide):
        alpha = appearance.alpha(footprint).detach()
        assert alpha[0, 0, 16, 16].item() > 0.98 and alpha[0, 0, 0, 0].item() < 1e-3
        edge = (alpha[0, 0, 16, 7] + alpha[0, 0, 16, 8]).item() / 2  # the pixels either side of the edge
        assert edge == pytest.approx(0.5, abs=0.01)  # (less by what the far corners take)
    assert wide.alpha(footprint)[0, 0, 16, 5].item() > narrow.alpha(footprint)[0, 0, 16, 5].item() + 0.05
    wide.alpha(footprint)[0, 0, 16, 5].backward()
    assert wide.log_feather.grad is not None and wide.log_feather.grad.abs() > 0


def test_colour_matching_moves_the_pasted_pixels_by_the_tissue_difference() -> None:
    appearance = Appearance(3)
    sources = torch.full((1, 3, 4, 4), 0.5)
    shifts = torch.tensor([0.2, -0.1, 0.0]).view(1, 3, 1, 1)
    assert torch.equal(appearance.pasted(sources, shifts), sources)  # plain copy-paste at first
    with torch.no_grad():
        appearance.match.fill_(1.0)
    torch.testing.assert_close(appearance.pasted(sources, shifts), sources + shifts)


def test_its_own_training_moves_the_appearance_against_a_critic() -> None:
    images, labels = _pairs(channels=3)
    compositor = _compositor(channels=3)
    before = [p.detach().clone() for p in compositor.weight_parameters()]
    torch.manual_seed(3)
    scalars = compositor.train_step(images, labels)
    assert {"d_loss", "g_gan", "feather", "match"} <= set(scalars)
    assert any(not torch.equal(p, b) for p, b in zip(compositor.weight_parameters(), before))
    assert compositor.arch_parameters() == []


def test_the_compositor_refuses_volumes_with_one_line() -> None:
    with pytest.raises(ValueError, match="pastes regions of 2D images; use generator pix2pix for volumes"):
        Compositor(GeneratorConfig("composite"), 2, 1, spatial_dims=3)
