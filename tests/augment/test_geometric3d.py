"""3D mask augmentation: a known shape moved by a known affine lands where it should."""

from dataclasses import replace

import pytest
import torch

from genseg.augment.geometric import GeometricRanges
from genseg.augment.geometric3d import (
    GeometricParams3D,
    augment_labels_3d,
    augment_pairs_3d,
    sample_geometric_3d,
)


def _box(shape=(9, 17, 17)) -> torch.Tensor:
    labels = torch.zeros(1, *shape, dtype=torch.long)
    labels[0, 2:5, 3:8, 6:12] = 1
    labels[0, 5:7, 9:13, 2:5] = 2
    return labels


def test_identity_leaves_volumes_unchanged() -> None:
    labels = _box()
    images = torch.rand(1, 2, *labels.shape[1:], generator=torch.Generator().manual_seed(0))
    warped_images, warped_labels = augment_pairs_3d(images, labels, 3, GeometricParams3D.identity(1))
    assert torch.equal(warped_labels, labels)
    assert torch.allclose(warped_images, images, atol=1e-5)


@pytest.mark.parametrize("axis", [0, 1, 2])
def test_a_translation_shifts_the_box_by_whole_voxels(axis: int) -> None:
    labels = _box()  # extents (x, y, z) = (16, 16, 8): a shift of 0.25 is (4, 4, 2) voxels
    translate = torch.zeros(1, 3)
    translate[0, axis] = 0.25
    moved = augment_labels_3d(labels, 3, replace(GeometricParams3D.identity(1), translate=translate))
    voxels = {0: 4, 1: 4, 2: 2}[axis]
    dim = {0: 3, 1: 2, 2: 1}[axis]  # x is the last dimension of (B, D, H, W)
    assert torch.equal(moved, torch.roll(labels, voxels, dims=dim))


def test_a_flip_mirrors_the_last_axis() -> None:
    labels = _box()
    params = replace(GeometricParams3D.identity(1), flip=torch.tensor([True]))
    assert torch.equal(augment_labels_3d(labels, 3, params), labels.flip(-1))


@pytest.mark.parametrize(("axis", "dims"), [(2, (-2, -1)), (0, (-3, -2))])
def test_a_quarter_turn_about_an_axis_is_a_rot90_of_its_plane(axis: int, dims: tuple[int, int]) -> None:
    labels = _box((17, 17, 17))
    rotate = torch.zeros(1, 3)
    rotate[0, axis] = 90.0
    turned = augment_labels_3d(labels, 3, replace(GeometricParams3D.identity(1), rotate=rotate))
    assert torch.equal(turned, torch.rot90(labels, k=-1, dims=dims))


def test_random_warps_keep_the_label_set_and_roughly_the_volume() -> None:
    labels = torch.zeros(4, 32, 32, 32, dtype=torch.long)  # far enough from the border to stay inside
    labels[:, 10:16, 10:22, 10:22] = 1
    labels[:, 16:22, 12:20, 12:20] = 2
    params = sample_geometric_3d(4, torch.Generator().manual_seed(1), replace(GeometricRanges(), pad=(0.0, 0.0)))
    warped = augment_labels_3d(labels, 3, params)
    assert warped.shape == labels.shape and set(warped.unique().tolist()) == {0, 1, 2}
    ratio = (warped > 0).sum(dim=(1, 2, 3)).float() / (labels > 0).sum(dim=(1, 2, 3)).float()
    scale = params.scale.prod(dim=1)
    assert torch.allclose(ratio, scale, rtol=0.25)


def test_draws_are_seeded_and_probability_zero_draws_only_flips() -> None:
    first = sample_geometric_3d(3, torch.Generator().manual_seed(5))
    again = sample_geometric_3d(3, torch.Generator().manual_seed(5))
    assert all(torch.equal(getattr(first, name), getattr(again, name)) for name in vars(first))
    assert (first.rotate.abs() > 0).all() and first.pad.shape == (3, 6)
    none = sample_geometric_3d(3, torch.Generator().manual_seed(5), replace(GeometricRanges(), probability=0.0))
    assert torch.equal(none.rotate, torch.zeros(3, 3)) and torch.equal(none.scale, torch.ones(3, 3))


def test_bad_shapes_are_named() -> None:
    with pytest.raises(ValueError, match="rotate must have shape"):
        GeometricParams3D(torch.zeros(2, dtype=torch.bool), torch.zeros(2, 6), torch.ones(2, 3), torch.zeros(2, 3),
                          torch.zeros(2))
    with pytest.raises(ValueError, match="share batch size and spatial shape"):
        augment_pairs_3d(torch.zeros(1, 1, 4, 4, 4), torch.zeros(1, 4, 4, 5, dtype=torch.long), 2,
                         GeometricParams3D.identity(1))
