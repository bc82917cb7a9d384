"""Volumes to one voxel spacing: extents, label maps and probabilities kept, a volume on the grid untouched."""

from __future__ import annotations

import numpy as np
import torch

from genseg.data import Sample
from genseg.data.resample import probabilities_to_shape, resample_sample, resampled_shape


def _box_volume(spacing: tuple[float, float, float]) -> Sample:
    """Class 1 in voxels 2..3 of axis 0 and class 2 beside it, on a 6 x 10 x 12 grid."""
    mask = np.zeros((6, 10, 12), dtype=np.int64)
    mask[2:4, 3:7, 2:6] = 1
    mask[2:4, 3:7, 6:10] = 2
    image = (mask / 2.0).astype(np.float32)[None]
    return Sample("box", image, mask, roi=np.ones_like(mask, dtype=bool), spacing=spacing)


def test_the_shape_at_another_spacing_keeps_the_extent() -> None:
    assert resampled_shape((20, 30, 10), (1.0, 1.0, 3.0), (1.0, 1.0, 1.5)) == (20, 30, 20)
    assert resampled_shape((5, 5, 5), (0.5, 2.0, 1.0), (1.0, 1.0, 1.0)) == (2, 10, 5)  # rounded, 2.5 -> 2


def test_a_volume_resampled_to_finer_voxels_keeps_its_labels_where_they_were() -> None:
    coarse = _box_volume((2.0, 1.0, 1.0))
    fine = resample_sample(coarse, (1.0, 1.0, 1.0))

    assert fine.image.shape == (1, 12, 10, 12) and fine.mask.shape == (12, 10, 12) and fine.roi.shape == (12, 10, 12)
    assert fine.spacing == (1.0, 1.0, 1.0)
    assert set(np.unique(fine.mask).tolist()) == {0, 1, 2}  # never an averaged class
    for label in (1, 2):  # each class keeps its volume in mm^3 and its place (voxels 4..7 of 1 mm)
        assert (fine.mask == label).sum() * 1.0 == (coarse.mask == label).sum() * 2.0
        assert np.array_equal(np.unique(np.nonzero(fine.mask == label)[0]), [4, 5, 6, 7])
    assert fine.roi.all() and 0.0 <= fine.image.min() and fine.image.max() <= 1.0


def test_a_volume_already_on_the_grid_is_returned_as_it_is() -> None:
    volume = _box_volume((1.0, 1.0, 1.0))
    assert resample_sample(volume, (1.0, 1.0, 1.0)) is volume
    assert resample_sample(volume, (1.04, 1.0, 1.0)) is volume  # less than half a voxel over the extent


def test_probabilities_back_on_the_input_grid_stay_distributions() -> None:
    probabilities = torch.softmax(torch.randn(3, 12, 10, 12, generator=torch.Generator().manual_seed(0)), dim=0)
    back = probabilities_to_shape(probabilities, (6, 10, 12))
    assert back.shape == (3, 6, 10, 12)
    assert torch.allclose(back.sum(0), torch.ones(6, 10, 12), atol=1e-5) and back.min() >= 0
    assert probabilities_to_shape(probabilities, (12, 10, 12)) is probabilities
