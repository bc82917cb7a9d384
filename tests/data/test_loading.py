"""Loading cases as 2D samples: real data, volume slicing, and the size/channel/id errors."""

from __future__ import annotations

import json
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest
from PIL import Image

from genseg.data import (
    DataError,
    index_cases,
    index_images,
    labels_of,
    load_samples,
    normalize_intensity,
    read_volume,
    volume_geometry,
)


def _png(path: Path, pixels: np.ndarray) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(pixels.astype(np.uint8)).save(path)


def _pair(root: Path, stem: str, image: np.ndarray, mask: np.ndarray) -> None:
    _png(root / "images" / f"{stem}.png", image)
    _png(root / "masks" / f"{stem}.png", mask)


def _ramp(height: int, width: int) -> np.ndarray:
    return np.arange(height * width).reshape(height, width) % 256


@pytest.mark.realdata
def test_jsrt_real_pairs(datasets_dir: Path) -> None:
    index = index_cases(datasets_dir / "jsrt_lung")
    samples = load_samples(index, index.ids[:3])
    assert [sample.case_id for sample in samples] == index.ids[:3]
    for sample in samples:
        assert sample.image.shape == (1, 200, 200) and sample.image.dtype == np.float32
        assert sample.image.min() >= 0.0 and sample.image.max() <= 1.0
        assert sample.mask.shape == (200, 200) and sample.mask.dtype == np.int64
        assert set(np.unique(sample.mask)) == {0, 1}
        assert sample.roi is None and sample.slice_index is None
    assert labels_of(index, index.ids[:3]).values == (0, 1)


@pytest.mark.realdata
def test_msd_hippocampus_real_volume_slices(datasets_dir: Path) -> None:
    index = index_cases(datasets_dir / "msd_hippocampus")
    case = index.cases["hippocampus_001"]
    slices = load_samples(index, ["hippocampus_001"], axis=0)
    shape, affine = volume_geometry(case.image_path)
    assert len(slices) == shape[0]
    assert [sample.slice_index for sample in slices] == list(range(shape[0]))
    assert all(sample.case_id == "hippocampus_001" for sample in slices)
    assert slices[0].image.shape == (1, shape[1], shape[2]) and slices[0].mask.shape == shape[1:]
    assert set(np.unique(np.stack([sample.mask for sample in slices]))) == {0, 1, 2}
    assert labels_of(index, ["hippocampus_001"]).values == (0, 1, 2)
    # normalized once per volume, not per slice
    volume, stored_affine = read_volume(case.image_path)
    np.testing.assert_allclose(np.stack([sample.image[0] for sample in slices]), normalize_intensity(volume[0]))
    np.testing.assert_allclose(affine, stored_affine)


@pytest.mark.parametrize("suffix", [".mha", ".nrrd"])
def test_nnunet_volumes_in_itk_formats_load_as_their_nifti_twins(tmp_path: Path, suffix: str) -> None:
    import SimpleITK as sitk

    from genseg.data import make_volume_phantom

    nifti = make_volume_phantom(tmp_path / "nifti", n_cases=2, affine=np.diag([0.8, 0.8, 1.6, 1.0]))
    itk = tmp_path / "itk"
    for folder, name in (("imagesTr", "{}_0000"), ("labelsTr", "{}")):
        (itk / folder).mkdir(parents=True)
        for path in sorted((nifti / folder).iterdir()):
            target = itk / folder / (name.format(path.name.removesuffix(".nii.gz")) + suffix)
            sitk.WriteImage(sitk.ReadImage(str(path)), str(target))
    (itk / "dataset.json").write_text(json.dumps({"channel_names": {"0": "MRI"}, "file_ending": suffix,
                                                  "labels": {"background": 0, "a": 1, "b": 2}}))

    ours, twins = index_cases(itk), index_cases(nifti)
    assert ours.is_volume and ours.ids == twins.ids == ["vol_000", "vol_001"]
    for sample, twin in zip(load_samples(ours, ours.ids), load_samples(twins, twins.ids)):
        np.testing.assert_allclose(sample.image, twin.image, atol=1e-6)
        np.testing.assert_array_equal(sample.mask, twin.mask)
        assert sample.spacing == pytest.approx(twin.spacing) == (0.8, 0.8, 1.6)


def test_volume_slicing_along_other_axes(tmp_path: Path) -> None:
    image = np.random.default_rng(0).normal(size=(3, 4, 5)).astype(np.float32)
    labels = np.zeros((3, 4, 5), dtype=np.uint8)
    labels[1, 2, 3] = 1
    for folder, data in (("imagesTr", image), ("labelsTr", labels)):
        (tmp_path / folder).mkdir()
        nib.save(nib.Nifti1Image(data, np.eye(4)), tmp_path / folder / "vol.nii.gz")
    index = index_cases(tmp_path)
    slices = load_samples(index, ["vol"], axis=2)
    assert len(slices) == 5 and slices[0].image.shape == (1, 3, 4)
    assert slices[3].mask[1, 2] == 1 and slices[3].mask.sum() == 1
    np.testing.assert_allclose(slices[3].image[0], normalize_intensity(image)[:, :, 3])
    assert len(load_samples(index, ["vol"], axis=1)) == 4


def test_volume_label_shape_mismatch(tmp_path: Path) -> None:
    for folder, shape in (("imagesTr", (3, 4, 5)), ("labelsTr", (3, 4, 6))):
        (tmp_path / folder).mkdir()
        nib.save(nib.Nifti1Image(np.zeros(shape, dtype=np.uint8), np.eye(4)), tmp_path / folder / "vol.nii.gz")
    message = r"size mismatch: image .*imagesTr/vol\.nii\.gz is 3x4x5 but .*labelsTr/vol\.nii\.gz is 3x4x6"
    with pytest.raises(DataError, match=message):
        load_samples(index_cases(tmp_path), ["vol"])


@pytest.mark.parametrize(("shift", "refused"), [(5.0, True), (2e-5, False)], ids=["moved-5mm", "header-rounding"])
def test_a_label_volume_on_another_voxel_grid_is_refused(tmp_path: Path, shift: float, refused: bool) -> None:
    from genseg.data import check_sizes

    affine = np.diag([0.8, 0.8, 1.6, 1.0])
    affine[:3, 3] = [-90.0, 120.0, 33.0]
    moved = affine.copy()
    moved[0, 3] += shift
    for folder, grid in (("imagesTr", affine), ("labelsTr", moved)):
        (tmp_path / folder).mkdir()
        nib.save(nib.Nifti1Image(np.zeros((3, 4, 5), dtype=np.uint8), grid), tmp_path / folder / "vol.nii.gz")
    index = index_cases(tmp_path)
    if not refused:
        check_sizes(index, ["vol"])
        assert load_samples(index, ["vol"], axis=None)[0].mask.shape == (3, 4, 5)
        return
    message = r"labelsTr/vol\.nii\.gz: geometry mismatch: its affine differs from its image vol\.nii\.gz's by up to 5 "
    for check in (lambda: check_sizes(index, ["vol"]), lambda: load_samples(index, ["vol"], axis=None)):
        with pytest.raises(DataError, match=message):
            check()


def test_unknown_case_id_names_the_id_and_folder(tmp_path: Path) -> None:
    _pair(tmp_path, "a", _ramp(4, 4), np.zeros((4, 4)))
    with pytest.raises(DataError, match=rf"{tmp_path}.*case id 'a.png' is not in this data folder.*without extension"):
        load_samples(index_cases(tmp_path), ["a.png"])


def test_image_mask_size_mismatch_names_both_files(tmp_path: Path) -> None:
    _pair(tmp_path, "a", _ramp(6, 8), np.zeros((6, 7)))
    with pytest.raises(DataError, match=r"images/a\.png is 6x8 but .*masks/a\.png is 6x7"):
        load_samples(index_cases(tmp_path), ["a"])


def test_region_of_interest_is_boolean_and_size_checked(tmp_path: Path) -> None:
    _pair(tmp_path, "a", _ramp(6, 8), np.zeros((6, 8)))
    _pair(tmp_path, "b", _ramp(6, 8), np.zeros((6, 8)))
    fov = np.zeros((6, 8))
    fov[1:5, 2:6] = 255
    _png(tmp_path / "fov" / "a.png", fov)
    _png(tmp_path / "fov" / "b.png", np.zeros((5, 8)))
    index = index_cases(tmp_path)
    (sample,) = load_samples(index, ["a"])
    assert sample.roi.dtype == bool and sample.roi.sum() == 16
    with pytest.raises(DataError, match=r"fov/b\.png is 5x8"):
        load_samples(index, ["b"])


def test_mixed_channel_counts_name_a_file_of_each(tmp_path: Path) -> None:
    _pair(tmp_path, "gray", _ramp(4, 4), np.zeros((4, 4)))
    _pair(tmp_path, "rgb", np.stack([_ramp(4, 4)] * 2 + [np.zeros((4, 4))], axis=-1), np.zeros((4, 4)))
    index = index_cases(tmp_path)
    assert load_samples(index, ["rgb"])[0].image.shape == (3, 4, 4)
    with pytest.raises(DataError, match=r"different channel counts: .*gray\.png has 1 and .*rgb\.png has 3"):
        load_samples(index, ["gray", "rgb"])


def test_nnunet_channels_are_stacked_and_normalized_separately(tmp_path: Path) -> None:
    for channel, scale in ((0, 1), (1, 3)):
        _png(tmp_path / "imagesTr" / f"case_{channel:04d}.png", _ramp(6, 6) // 4 * scale)
    _png(tmp_path / "labelsTr" / "case.png", np.eye(6) * 2)
    metadata = {
        "channel_names": {"0": "T1", "1": "T2"},
        "labels": {"background": 0, "a": 1, "b": 2},
        "file_ending": ".png",
    }
    (tmp_path / "dataset.json").write_text(json.dumps(metadata))
    (sample,) = load_samples(index_cases(tmp_path), ["case"])
    assert sample.image.shape == (2, 6, 6)
    np.testing.assert_allclose(sample.image[0], sample.image[1], atol=1e-6)
    assert sample.image.max() == 1.0
    np.testing.assert_array_equal(sample.mask, np.eye(6) * 2)
    assert labels_of(index_cases(tmp_path), ["case"]).values == (0, 1, 2)  # dataset.json declares 1


def test_unlabeled_images_load_without_masks(tmp_path: Path) -> None:
    _png(tmp_path / "x.png", _ramp(4, 5))
    index = index_images(tmp_path)
    (sample,) = load_samples(index, ["x"], require_masks=False)
    assert sample.mask is None and sample.image.shape == (1, 4, 5)
    with pytest.raises(DataError, match="has no mask"):
        load_samples(index, ["x"])
