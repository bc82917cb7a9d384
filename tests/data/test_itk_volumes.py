"""MetaImage and NRRD volumes: read and written in the NIfTI convention, checked against ITK itself."""

from __future__ import annotations

import sys
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest
import SimpleITK as sitk

from genseg.data import DataError, read_label_volume, read_volume, write_label_volume
from genseg.data.io import volume_header, volume_output_suffix, write_image_volume

SPACING = (0.7, 1.1, 2.5)
ORIGIN = (12.0, -30.5, 4.25)
DIRECTION = (0.0, 1.0, 0.0, -1.0, 0.0, 0.0, 0.0, 0.0, 1.0)  # x and y swapped, one flipped


def _itk_image(values: np.ndarray, **options: object) -> sitk.Image:
    image = sitk.GetImageFromArray(values, **options)
    image.SetSpacing(SPACING)
    image.SetOrigin(ORIGIN)
    image.SetDirection(DIRECTION)
    return image


@pytest.mark.parametrize("suffix", [".mha", ".nrrd"])
def test_an_itk_volume_reads_as_its_voxel_grid_with_the_ras_affine(tmp_path: Path, suffix: str) -> None:
    values = np.random.default_rng(0).normal(size=(5, 4, 3)).astype(np.float32)  # ITK's (Z, Y, X)
    image = _itk_image(values)
    path = tmp_path / f"case{suffix}"
    sitk.WriteImage(image, str(path))

    data, affine = read_volume(path)

    assert data.shape == (1, 3, 4, 5)
    for index in [(0, 0, 0), (2, 1, 4), (1, 3, 2)]:
        assert data[(0, *index)] == pytest.approx(image.GetPixel(index))
        left, posterior, superior = image.TransformIndexToPhysicalPoint(index)  # ITK's world is LPS
        np.testing.assert_allclose(affine @ (*index, 1), (-left, -posterior, superior, 1), atol=1e-9)
    assert volume_header(path) == ((3, 4, 5), pytest.approx(affine))


def test_an_itk_volume_and_the_nifti_itk_writes_of_it_read_alike(tmp_path: Path) -> None:
    image = _itk_image(np.random.default_rng(1).integers(0, 3, (5, 4, 3)).astype(np.uint8))
    sitk.WriteImage(image, str(tmp_path / "labels.mha"))
    sitk.WriteImage(image, str(tmp_path / "labels.nii.gz"))  # ITK's own LPS -> RAS conversion

    np.testing.assert_array_equal(read_label_volume(tmp_path / "labels.mha"),
                                  read_label_volume(tmp_path / "labels.nii.gz"))
    np.testing.assert_allclose(volume_header(tmp_path / "labels.mha")[1], nib.load(tmp_path / "labels.nii.gz").affine,
                               atol=1e-6)


def test_vector_and_4d_itk_images_put_their_channels_first(tmp_path: Path) -> None:
    values = np.random.default_rng(2).normal(size=(5, 4, 3, 2)).astype(np.float32)
    sitk.WriteImage(_itk_image(values, isVector=True), str(tmp_path / "vector.nrrd"))
    sitk.WriteImage(sitk.JoinSeries([sitk.GetImageFromArray(values[..., k]) for k in range(2)]),
                    str(tmp_path / "series.mha"))

    for name in ("vector.nrrd", "series.mha"):
        data, _ = read_volume(tmp_path / name)
        assert data.shape == (2, 3, 4, 5)
        np.testing.assert_allclose(data[1], values[..., 1].transpose(2, 1, 0))
        assert volume_header(tmp_path / name)[0] == (3, 4, 5, 2)


@pytest.mark.parametrize("suffix", [".mha", ".nrrd"])
def test_written_itk_volumes_keep_labels_and_geometry(tmp_path: Path, suffix: str) -> None:
    labels = np.random.default_rng(3).integers(0, 4, (3, 4, 5))
    affine = np.array([[0.0, -0.8, 0.0, 12.0], [1.5, 0.0, 0.0, -4.0], [0.0, 0.0, 2.0, 7.5], [0.0, 0.0, 0.0, 1.0]])
    path = tmp_path / f"labels{suffix}"

    write_label_volume(path, labels, affine)
    write_image_volume(tmp_path / f"image{suffix}", np.stack([labels, 2 * labels]).astype(np.float32), affine)

    np.testing.assert_array_equal(read_label_volume(path), labels)
    assert sitk.ReadImage(str(path)).GetPixelID() == sitk.sitkUInt8
    np.testing.assert_allclose(volume_header(path)[1], affine, atol=1e-9)
    image, image_affine = read_volume(tmp_path / f"image{suffix}")
    np.testing.assert_array_equal(image[1], 2 * labels)
    np.testing.assert_allclose(image_affine, affine, atol=1e-9)
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([f"image{suffix}", f"labels{suffix}"])


def test_volumes_are_written_in_the_inputs_single_file_type() -> None:
    assert [volume_output_suffix(Path(f"a{s}")) for s in (".nii", ".nii.gz", ".mha", ".mhd", ".nrrd", ".nhdr")] == [
        ".nii.gz", ".nii.gz", ".mha", ".mha", ".nrrd", ".nrrd"]
    with pytest.raises(ValueError, match="cannot write a volume as '.mhd'"):
        write_label_volume(Path("labels.mhd"), np.zeros((2, 2, 2), dtype=np.int64), np.eye(4))


def test_a_2d_itk_image_is_one_slice_with_its_in_plane_geometry(tmp_path: Path) -> None:
    """2D MetaImage files were refused as "a 2D image in a volume format"; they are one slice, as 2D NIfTI."""
    values = np.random.default_rng(3).normal(size=(4, 3)).astype(np.float32)  # ITK's (Y, X)
    image = sitk.GetImageFromArray(values)
    image.SetSpacing((0.7, 1.1))
    image.SetOrigin((12.0, -30.5))
    image.SetDirection((0.0, 1.0, -1.0, 0.0))
    sitk.WriteImage(image, str(tmp_path / "slice.mha"))

    data, affine = read_volume(tmp_path / "slice.mha")

    assert data.shape == (1, 3, 4, 1)
    np.testing.assert_allclose(data[0, :, :, 0], values.T)
    for index in [(0, 0), (2, 1)]:
        left, posterior = image.TransformIndexToPhysicalPoint(index)
        np.testing.assert_allclose(affine @ (*index, 0, 1), (-left, -posterior, 0, 1), atol=1e-9)
    assert volume_header(tmp_path / "slice.mha") == ((3, 4, 1), pytest.approx(affine))


def test_bad_itk_files_are_one_line_data_errors(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    broken = tmp_path / "broken.mha"
    broken.write_bytes(b"ObjectType = Image\nNDims = 3\nDimSize = 4 4 4\n"
                       b"ElementType = MET_FLOAT\nElementDataFile = LOCAL\n")  # no voxels after the header
    with pytest.raises(DataError, match=r"broken\.mha.*cannot read volume.*valid MetaImage") as error:
        read_volume(broken)
    assert "\n" not in str(error.value)
    sitk.WriteImage(sitk.Image([2] * 5, sitk.sitkUInt8), str(tmp_path / "five.mha"))
    with pytest.raises(DataError, match=r"five\.mha.*5D image in a volume format"):
        volume_header(tmp_path / "five.mha")
    sitk.WriteImage(sitk.Image(4, 4, sitk.sitkUInt8), str(tmp_path / "flat.mha"))

    monkeypatch.setitem(sys.modules, "SimpleITK", None)  # as if the extra were not installed
    with pytest.raises(DataError, match=r"flat\.mha.*pip install 'genseg\[itk\]'"):
        read_volume(tmp_path / "flat.mha")
