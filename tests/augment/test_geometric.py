"""The mask augmentation T: sampling, the composed affine warp, labels and image-label pairs."""

from __future__ import annotations

import pytest
import torch

from genseg.augment.geometric import (
    GeometricParams,
    GeometricRanges,
    RandomGeometric,
    affine_matrices,
    augment_labels,
    augment_pairs,
    sample_geometric,
    warp,
)


def _warp(x: torch.Tensor, params: GeometricParams) -> torch.Tensor:
    return warp(x, affine_matrices(params, *x.shape[-2:]))


def _blobs(batch: int = 2, size: int = 32) -> torch.Tensor:
    """Label maps with background 0, a square of class 1 and a square of class 2."""
    labels = torch.zeros(batch, size, size, dtype=torch.long)
    labels[:, 6:16, 6:26] = 1
    labels[:, 16:26, 10:22] = 2
    return labels


def test_sampling_is_seeded_and_within_ranges() -> None:
    ranges = GeometricRanges()
    first = sample_geometric(256, torch.Generator().manual_seed(3), ranges)
    second = sample_geometric(256, torch.Generator().manual_seed(3), ranges)
    for name, value in vars(first).items():
        assert torch.equal(value, getattr(second, name)), name
    assert first.flip.dtype == torch.bool and 0.3 < first.flip.float().mean() < 0.7
    for name in ("pad", "scale", "translate", "rotate", "shear"):
        low, high = getattr(ranges, name)
        value = getattr(first, name)
        assert low <= value.min() and value.max() <= high, name
        assert value.max() - value.min() > 0.8 * (high - low), f"{name} does not cover its range"


def test_each_sample_gets_its_own_parameters() -> None:
    params = sample_geometric(4, torch.Generator().manual_seed(0))
    for name in ("pad", "scale", "translate", "rotate", "shear"):
        rows = getattr(params, name).reshape(4, -1)
        assert len({tuple(row.tolist()) for row in rows}) == 4, name
    same = _blobs(batch=4)
    out = augment_labels(same, 3, params)
    assert all(not torch.equal(out[0], out[i]) for i in (1, 2, 3))


def test_identity_parameters_leave_images_unchanged() -> None:
    x = torch.rand(3, 2, 17, 23)
    assert torch.allclose(_warp(x, GeometricParams.identity(3)), x, atol=1e-5)


def test_pure_flip_equals_torch_flip() -> None:
    x = torch.rand(2, 1, 16, 20)
    params = GeometricParams.identity(2)
    params.flip[0] = True
    out = _warp(x, params)
    assert torch.allclose(out[0], x[0].flip(-1), atol=1e-5)
    assert torch.allclose(out[1], x[1], atol=1e-5)


def test_pad_only_shrinks_a_white_image_to_a_smaller_box() -> None:
    size = 65  # the image spans size - 1 = 64 units between the outer pixel centres
    params = GeometricParams.identity(2)
    params.pad[0] = torch.tensor([0.1, 0.1, 0.05, 0.05])  # symmetric: a centred box
    params.pad[1] = torch.tensor([0.1, 0.0, 0.0, 0.08])
    out = _warp(torch.ones(2, 1, size, size), params)
    for (left, right, top, bottom), image in zip(params.pad.tolist(), out[:, 0]):
        expected = 1 / (1 + left + right) / (1 + top + bottom)
        assert image.mean().item() == pytest.approx(expected, abs=2 / size)
        rows, cols = torch.nonzero(image > 0.5, as_tuple=True)
        assert cols.min().item() == pytest.approx(64 * left / (1 + left + right), abs=1)
        assert 64 - cols.max().item() == pytest.approx(64 * right / (1 + left + right), abs=1)
        assert rows.min().item() == pytest.approx(64 * top / (1 + top + bottom), abs=1)
        assert 64 - rows.max().item() == pytest.approx(64 * bottom / (1 + top + bottom), abs=1)
    centred = out[0, 0]
    assert torch.allclose(centred, centred.flip(-1), atol=1e-5)
    assert torch.allclose(centred, centred.flip(-2), atol=1e-5)


def test_reflection_padding_leaves_no_black_bands() -> None:
    params = GeometricParams.identity(1)
    params.pad[0] = torch.tensor([0.1, 0.1, 0.05, 0.05])
    labels = torch.zeros(1, 33, 33, dtype=torch.long)
    labels[:, :, :4] = 1  # a stripe at the left border: reflection mirrors it into the pad
    images, warped = augment_pairs(torch.ones(1, 1, 33, 33), labels, 2, params, padding="reflection")
    zero_filled, _ = augment_pairs(torch.ones(1, 1, 33, 33), labels, 2, params)
    assert images.min().item() == pytest.approx(1.0, abs=1e-5)
    assert zero_filled.min().item() < 0.5
    assert warped[0, :, 0].all()  # the stripe reaches the border instead of a padded gap


def test_rotation_by_90_degrees_matches_rot90_clockwise() -> None:
    x = torch.rand(1, 2, 21, 21)
    params = GeometricParams.identity(1)
    params.rotate[0] = 90.0  # clockwise as displayed
    expected = torch.rot90(x, k=-1, dims=(-2, -1))
    assert torch.allclose(_warp(x, params)[..., 1:-1, 1:-1], expected[..., 1:-1, 1:-1], atol=1e-4)


def test_multiclass_labels_stay_in_the_label_set() -> None:
    labels = _blobs(batch=8)
    assert torch.equal(augment_labels(labels, 3, GeometricParams.identity(8)), labels)
    out = augment_labels(labels, 3, sample_geometric(8, torch.Generator().manual_seed(1)))
    assert out.dtype == torch.int64 and out.shape == labels.shape
    assert set(out.unique().tolist()) == {0, 1, 2}
    # Away from the borders between classes a pixel keeps its class after a small shift.
    params = GeometricParams.identity(1)
    params.translate[0] = torch.tensor([1.0, 0.0]) / 31  # one pixel to the right
    assert torch.equal(augment_labels(labels[:1], 3, params)[0, 18:24, 12:22], labels[0, 18:24, 11:21])


@pytest.mark.parametrize("shift", [0.15, 0.45, 0.55, 0.85])
def test_binary_masks_are_thresholded_at_0_5(shift: float) -> None:
    labels = torch.zeros(1, 33, 33, dtype=torch.long)
    labels[:, :, 10:21] = 1
    params = GeometricParams.identity(1)
    params.translate[0, 0] = shift / 32  # sub-pixel shift right: column 21 gets `shift`, column 10 keeps 1 - shift
    out = augment_labels(labels, 2, params)
    moved = shift > 0.5
    assert out[0, :, 11:21].eq(1).all() and out[0, :, :10].eq(0).all() and out[0, :, 22:].eq(0).all()
    assert out[0, :, 10].eq(int(not moved)).all() and out[0, :, 21].eq(int(moved)).all()


def test_warping_keeps_the_area_of_a_structure() -> None:
    """Random small geometry (no scaling) leaves a disc's area within 1 %; a 0.1 threshold grew it by 4-8 %."""
    yy, xx = torch.meshgrid(torch.arange(96.0), torch.arange(96.0), indexing="ij")
    disc = (((yy - 47.5) ** 2 + (xx - 47.5) ** 2) < 20.0**2).long().expand(16, 96, 96)
    ranges = GeometricRanges(pad=(0.0, 0.0), scale=(1.0, 1.0), shear=(0.0, 0.0), translate=(-0.05, 0.05))
    out = augment_labels(disc, 2, sample_geometric(16, torch.Generator().manual_seed(3), ranges))
    ratio = out.sum() / disc.sum()
    assert abs(ratio.item() - 1.0) < 0.01


def test_images_and_labels_get_the_same_geometry() -> None:
    labels = _blobs(batch=4)
    params = sample_geometric(4, torch.Generator().manual_seed(2))
    images = (labels == 1).float().unsqueeze(1)
    warped_images, warped_labels = augment_pairs(images, (labels == 1).long(), 2, params)
    assert torch.equal((warped_images[:, 0] > 0.5).long(), warped_labels)
    assert torch.equal(warped_labels, augment_labels((labels == 1).long(), 2, params))


def test_gradient_flows_through_warp_to_the_input() -> None:
    params = sample_geometric(2, torch.Generator().manual_seed(4))
    matrices = affine_matrices(params, 6, 7).double()
    x = torch.rand(2, 1, 6, 7, dtype=torch.double, requires_grad=True)
    assert torch.autograd.gradcheck(lambda image: warp(image, matrices), (x,))


def test_random_geometric_is_reproducible() -> None:
    labels = _blobs(batch=3)
    first = RandomGeometric(torch.Generator().manual_seed(5))(labels, 3)
    second = RandomGeometric(torch.Generator().manual_seed(5))(labels, 3)
    assert torch.equal(first, second) and not torch.equal(first, labels)


def test_bad_input_raises_value_error() -> None:
    with pytest.raises(ValueError, match="label values"):
        augment_labels(_blobs(), 2, GeometricParams.identity(2))
    with pytest.raises(ValueError, match="rotate"):
        GeometricRanges(rotate=(10.0, -10.0))
    with pytest.raises(ValueError, match="pad"):
        GeometricParams(**{**vars(GeometricParams.identity(2)), "pad": torch.zeros(2, 2)})


def test_probability_leaves_the_other_samples_unmoved() -> None:
    ranges = GeometricRanges(flip_probability=0.0, probability=0.25)
    params = sample_geometric(400, torch.Generator().manual_seed(6), ranges)
    moved = params.rotate != 0
    assert 0.15 < moved.float().mean().item() < 0.35
    identity = GeometricParams.identity(400)
    for name in ("pad", "scale", "translate", "shear"):
        assert torch.equal(getattr(params, name)[~moved], getattr(identity, name)[~moved])
    # The default (probability 1) keeps its random stream: the same draws as before the option existed.
    assert torch.equal(sample_geometric(4, torch.Generator().manual_seed(6)).rotate,
                       sample_geometric(4, torch.Generator().manual_seed(6), GeometricRanges(probability=1.0)).rotate)
