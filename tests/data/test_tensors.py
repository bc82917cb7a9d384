"""Square tensors from samples: bilinear images, label maps resized by one-hot area + argmax."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from genseg.data import PairTensors, Sample, resize_labels, resize_probabilities, to_tensors


def _sample(case_id: str, height: int, width: int, channels: int = 1, with_mask: bool = True) -> Sample:
    rng = np.random.default_rng(len(case_id) + height)
    image = rng.uniform(0, 1, (channels, height, width)).astype(np.float32)
    mask = rng.integers(0, 2, (height, width)) if with_mask else None
    return Sample(case_id, image, mask)


def test_to_tensors_shapes_dtypes_and_order() -> None:
    samples = [_sample("a", 40, 30, channels=3), _sample("bb", 64, 64, channels=3), _sample("c", 20, 50, channels=3)]
    pairs = to_tensors(samples, size=32, num_classes=2)
    assert isinstance(pairs, PairTensors)
    assert pairs.images.shape == (3, 3, 32, 32) and pairs.images.dtype == torch.float32
    assert pairs.masks is not None and pairs.masks.shape == (3, 32, 32) and pairs.masks.dtype == torch.int64
    assert pairs.case_ids == ["a", "bb", "c"]
    assert pairs.images.min() >= 0.0 and pairs.images.max() <= 1.0
    assert set(pairs.masks.unique().tolist()) <= {0, 1}


def test_to_tensors_keeps_a_sample_of_the_target_size_unchanged() -> None:
    sample = _sample("a", 32, 32)
    pairs = to_tensors([sample], size=32, num_classes=2)
    np.testing.assert_array_equal(pairs.images[0].numpy(), sample.image)
    np.testing.assert_array_equal(pairs.masks[0].numpy(), sample.mask)


def test_to_tensors_without_masks_and_mixed() -> None:
    unlabeled = [_sample("a", 16, 16, with_mask=False)]
    assert to_tensors(unlabeled, size=32, num_classes=2).masks is None
    with pytest.raises(ValueError, match="some samples have masks"):
        to_tensors(unlabeled + [_sample("b", 16, 16)], size=32, num_classes=2)
    with pytest.raises(ValueError, match="no samples"):
        to_tensors([], size=32, num_classes=2)


def test_thin_structures_survive_downsampling() -> None:
    labels = torch.zeros(64, 64, dtype=torch.long)
    labels[:, 29:32] = 1  # a vertical vessel 3 pixels wide
    labels[10, :] = 1  # a horizontal one 1 pixel wide: half of each 2x2 block, a tie
    resized = resize_labels(labels, (32, 32), num_classes=2)
    assert resized.shape == (32, 32) and resized.dtype == torch.int64
    assert resized[:, 14:16].all() and resized[5, :].all()  # both continuous, at their places
    assert resized.sum() == 32 * 2 + 32 - 2  # 3 px -> 2 px wide, 1 px -> 1 px, nothing else
    assert set(resized.unique().tolist()) == {0, 1}


def test_multiclass_labels_are_never_averaged() -> None:
    labels = torch.zeros(1, 48, 48, dtype=torch.long)
    labels[:, :, 24:] = 3  # classes 0 and 3 touch: averaging values would invent 1 and 2
    labels[:, 30:40, 5:15] = 2
    resized = resize_labels(labels, (20, 20), num_classes=4)
    assert resized.shape == (1, 20, 20)
    assert set(resized.unique().tolist()) == {0, 2, 3}
    assert (resized[0, :, :9] != 3).all() and (resized[0, :, 11:] == 3).all()
    upsampled = resize_labels(labels, (96, 96), num_classes=4)
    assert set(upsampled.unique().tolist()) == {0, 2, 3}
    assert (upsampled[0, ::2, ::2] == labels[0]).all()


def test_resize_labels_refuses_labels_beyond_num_classes() -> None:
    with pytest.raises(ValueError, match=r"0\.\.1"):
        resize_labels(torch.full((4, 4), 2), (2, 2), num_classes=2)


def test_resize_probabilities_keeps_distributions() -> None:
    probabilities = torch.softmax(torch.randn(2, 3, 16, 16), dim=1)
    resized = resize_probabilities(probabilities, (40, 30))
    assert resized.shape == (2, 3, 40, 30)
    torch.testing.assert_close(resized.sum(dim=1), torch.ones(2, 40, 30))
    assert resized.min() >= 0


def test_volumes_are_padded_centred_into_the_patch_voxels_unchanged() -> None:
    image = np.random.default_rng(0).random((1, 3, 4, 5), dtype=np.float32)
    mask = np.ones((3, 4, 5), dtype=np.int64)
    pairs = to_tensors([Sample("v", image, mask)], (8, 8, 8), num_classes=2)
    assert pairs.images.shape == (1, 1, 8, 8, 8) and pairs.masks.shape == (1, 8, 8, 8)
    assert torch.equal(pairs.images[0, :, 2:5, 2:6, 1:6], torch.from_numpy(image))
    assert pairs.masks.sum() == mask.sum() and pairs.images.sum() == pytest.approx(float(image.sum()))


def test_volumes_larger_than_the_patch_get_a_canvas_grown_in_steps_of_16() -> None:
    big = Sample("big", np.ones((1, 40, 8, 8), dtype=np.float32), np.ones((40, 8, 8), dtype=np.int64))
    small = Sample("small", np.ones((1, 8, 8, 8), dtype=np.float32), np.ones((8, 8, 8), dtype=np.int64))
    pairs = to_tensors([big, small], (32, 32, 32), num_classes=2)
    assert pairs.images.shape == (2, 1, 48, 32, 32)
    assert pairs.masks[0].sum() == 40 * 8 * 8 and pairs.masks[1].sum() == 8 * 8 * 8
