"""Reading and writing single files: conventions, label rules and errors that name the fix."""

from __future__ import annotations

from pathlib import Path

import nibabel as nib
import numpy as np
import pytest
import tifffile
from PIL import Image

from genseg.data import (
    DataError,
    normalize_intensity,
    read_image,
    read_label_volume,
    read_mask,
    read_volume,
    write_label_volume,
    write_mask_png,
)
from genseg.data.io import COLOUR_LABEL, display_pixels


def _save(path: Path, pixels: np.ndarray, **options: object) -> Path:
    Image.fromarray(pixels).save(path, **options)
    return path


def test_read_image_gray_png_keeps_raw_values(tmp_path: Path) -> None:
    pixels = np.arange(12, dtype=np.uint8).reshape(3, 4) * 20
    image = read_image(_save(tmp_path / "a.png", pixels))
    assert image.dtype == np.float32 and image.shape == (1, 3, 4)
    np.testing.assert_array_equal(image[0], pixels)


def test_read_image_rgba_drops_alpha(tmp_path: Path) -> None:
    pixels = np.random.default_rng(0).integers(0, 256, (5, 6, 4), dtype=np.uint8)
    image = read_image(_save(tmp_path / "a.png", pixels))
    assert image.shape == (3, 5, 6)
    np.testing.assert_array_equal(image, np.moveaxis(pixels[..., :3], -1, 0))


def test_read_image_resolves_palettes(tmp_path: Path) -> None:
    indices = np.array([[0, 1], [1, 0]], dtype=np.uint8)
    gray = Image.fromarray(indices, mode="P")
    gray.putpalette([0, 0, 0, 200, 200, 200])
    gray.save(tmp_path / "gray.gif")
    colour = Image.fromarray(indices, mode="P")
    colour.putpalette([0, 0, 0, 255, 0, 10])
    colour.save(tmp_path / "colour.png")

    np.testing.assert_array_equal(read_image(tmp_path / "gray.gif")[0], indices * 200)
    rgb = read_image(tmp_path / "colour.png")
    assert rgb.shape == (3, 2, 2)
    np.testing.assert_array_equal(rgb[:, 0, 1], [255, 0, 10])


def test_read_image_tiff_keeps_16_bit_and_float(tmp_path: Path) -> None:
    rgb16 = (np.arange(60).reshape(4, 5, 3) * 1000).astype(np.uint16)
    tifffile.imwrite(tmp_path / "rgb16.tif", rgb16)
    planar = np.moveaxis(rgb16, -1, 0)
    tifffile.imwrite(tmp_path / "planar.tiff", planar, photometric="rgb", planarconfig="separate")
    floats = np.linspace(-1, 1, 20, dtype=np.float32).reshape(4, 5)
    tifffile.imwrite(tmp_path / "float.tif", floats)

    np.testing.assert_array_equal(read_image(tmp_path / "rgb16.tif"), planar)
    np.testing.assert_array_equal(read_image(tmp_path / "planar.tiff"), planar)
    np.testing.assert_array_equal(read_image(tmp_path / "float.tif")[0], floats)


def test_read_image_corrupt_file_is_a_data_error(tmp_path: Path) -> None:
    path = tmp_path / "broken.png"
    path.write_bytes(b"this is not an image" * 10)
    with pytest.raises(DataError, match=r"broken\.png.*cannot read image.*valid PNG"):
        read_image(path)


def test_read_image_missing_or_unsupported(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="file not found"):
        read_image(tmp_path / "nothing.png")
    (tmp_path / "notes.txt").write_text("x")
    with pytest.raises(DataError, match="unsupported image type '.txt'"):
        read_image(tmp_path / "notes.txt")


def test_normalize_intensity_maps_percentiles_to_unit_range() -> None:
    image = np.random.default_rng(0).normal(100, 20, (1, 50, 50)).astype(np.float32)
    image[0, 0, 0] = 10_000  # an outlier must not squash everything else
    normalized = normalize_intensity(image)
    assert normalized.dtype == np.float32 and normalized.shape == image.shape
    assert normalized.min() == 0.0 and normalized.max() == 1.0
    assert 0.4 < np.median(normalized) < 0.6


def test_normalize_intensity_keeps_colour_balance_and_handles_constants() -> None:
    red = np.linspace(0, 200, 100, dtype=np.float32).reshape(10, 10)
    rgb = np.stack([red, red / 2, red / 4])
    normalized = normalize_intensity(rgb)
    np.testing.assert_allclose(normalized[1][red < 150], normalized[0][red < 150] / 2, atol=0.02)
    np.testing.assert_array_equal(normalize_intensity(np.full((1, 4, 4), 7.0)), np.zeros((1, 4, 4)))
    spike = np.zeros((1, 100, 100))
    spike[0, 0, 0] = 5.0  # below the 0.5 % tail: min/max take over
    assert normalize_intensity(spike)[0, 0, 0] == 1.0


def test_read_mask_binary_multiclass_and_equal_rgb(tmp_path: Path) -> None:
    binary = np.array([[0, 255], [255, 0]], dtype=np.uint8)
    multiclass = np.array([[0, 1], [2, 3]], dtype=np.uint8)
    labels = read_mask(_save(tmp_path / "binary.png", binary))
    assert labels.dtype == np.int64
    np.testing.assert_array_equal(labels, binary // 255)
    np.testing.assert_array_equal(read_mask(_save(tmp_path / "multi.png", multiclass)), multiclass)
    rgb = np.repeat(binary[..., None], 3, axis=-1)
    np.testing.assert_array_equal(read_mask(_save(tmp_path / "rgb.png", rgb)), binary // 255)


def test_a_black_and_white_jpeg_mask_is_thresholded_once_warned(tmp_path: Path, caplog: pytest.LogCaptureFixture
                                                                   ) -> None:
    mask = np.zeros((64, 64), dtype=np.uint8)
    mask[16:48, 20:40] = 255
    gray = _save(tmp_path / "gray.jpg", mask, quality=75)
    colour = _save(tmp_path / "colour.jpg", np.stack([mask] * 3, axis=-1), quality=75)  # as Kvasir-SEG's
    assert len(np.unique(np.asarray(Image.open(gray)))) > 2  # compression left gray edges
    with caplog.at_level("WARNING"):
        for path in (gray, colour):
            np.testing.assert_array_equal(read_mask(path), mask // 255)
            np.testing.assert_array_equal(read_mask(path, stored=True), mask)
    assert [record.getMessage().count("thresholded at 128") for record in caplog.records] == [1]  # once per folder


@pytest.mark.parametrize("kind", ["three classes", "a photograph"])
def test_other_jpeg_masks_are_refused(tmp_path: Path, kind: str) -> None:
    mask = np.zeros((64, 64), dtype=np.uint8)
    if kind == "three classes":
        mask[:, 21:], mask[:, 42:] = 100, 200
    else:
        mask = np.random.default_rng(0).integers(0, 256, (64, 64)).astype(np.uint8)
    path = _save(tmp_path / "mask.jpg", mask, quality=75)
    with pytest.raises(DataError, match=r"mask\.jpg.*not labels.*distinct.*save masks as PNG.*JPEG"):
        read_mask(path)


def test_read_mask_refuses_gray_ramps_colours_and_fractions(tmp_path: Path) -> None:
    ramp = np.tile(np.arange(256, dtype=np.uint8), (4, 1))
    with pytest.raises(DataError, match=r"ramp\.png.*256 distinct: 0, 1, 2"):
        read_mask(_save(tmp_path / "ramp.png", ramp))
    colours = np.zeros((4, 4, 3), dtype=np.uint8)
    colours[:2, :, 0] = 255
    with pytest.raises(DataError, match="colour"):
        read_mask(_save(tmp_path / "colours.png", colours))
    fractions = np.full((4, 4), 0.5, dtype=np.float32)
    tifffile.imwrite(tmp_path / "fractions.tif", fractions)
    with pytest.raises(DataError, match="0.5"):
        read_mask(tmp_path / "fractions.tif")


def test_label_values_drawn_to_be_seen_are_read_and_antialiased_masks_are_not(tmp_path: Path) -> None:
    visible = np.zeros((12, 12), dtype=np.uint8)  # REFUGE-style 0/128/255: three regions
    visible[2:6, 2:10], visible[7:11, 2:10] = 128, 255
    np.testing.assert_array_equal(read_mask(_save(tmp_path / "visible.png", visible)), visible)
    yy, xx = np.mgrid[:64, :64]
    disc = Image.fromarray((((yy - 32) ** 2 + (xx - 30) ** 2) < 15**2).astype(np.uint8) * 255)
    for name, smoothed in (("down", disc.resize((29, 29), Image.BILINEAR)),
                           ("up", disc.resize((8, 8), Image.NEAREST).resize((64, 64), Image.BILINEAR))):
        with pytest.raises(DataError, match=rf"{name}\.png: mask values are not labels"):
            read_mask(_save(tmp_path / f"{name}.png", np.asarray(smoothed)))
    edges_only = np.zeros((12, 12), dtype=np.uint8)  # a value on an edge, as one antialiasing step leaves
    edges_only[2:10, 2:10], edges_only[2:10, 10] = 255, 128
    with pytest.raises(DataError, match="not labels"):
        read_mask(_save(tmp_path / "edges.png", edges_only))
    close = visible.copy()
    close[visible == 128] = 250  # 250 beside 255: not values anyone draws to be told apart
    with pytest.raises(DataError, match="not labels"):
        read_mask(_save(tmp_path / "close.png", close))


def test_a_colour_coded_mask_is_read_by_its_colours_and_written_back_in_them(tmp_path: Path) -> None:
    colours = np.zeros((12, 12, 3), dtype=np.uint8)  # as CVAT exports: one colour per class
    colours[2:6, 2:10], colours[7:11, 2:10] = (255, 0, 0), (0, 0, 255)
    values = read_mask(_save(tmp_path / "colours.png", colours))
    assert sorted(np.unique(values).tolist()) == [0, COLOUR_LABEL + 0x0000FF, COLOUR_LABEL + 0xFF0000]
    write_mask_png(tmp_path / "written.png", values, colour=True)
    with Image.open(tmp_path / "written.png") as written:
        assert written.mode == "RGB"
        np.testing.assert_array_equal(np.asarray(written), colours)
    write_mask_png(tmp_path / "background.png", np.zeros((4, 4), dtype=np.int64), colour=True)
    with Image.open(tmp_path / "background.png") as background:
        assert background.mode == "RGB"  # a colour set's files stay colour, also where nothing was found
    smoothed = np.asarray(Image.fromarray(colours).resize((29, 29), Image.BILINEAR))
    with pytest.raises(DataError, match=r"smoothed\.png: mask is a colour image whose \d+ colours are not one per"):
        read_mask(_save(tmp_path / "smoothed.png", smoothed))


def test_write_mask_png_round_trip(tmp_path: Path) -> None:
    binary = np.random.default_rng(0).integers(0, 2, (7, 9))
    write_mask_png(tmp_path / "binary.png", binary)
    assert set(np.unique(np.asarray(Image.open(tmp_path / "binary.png")))) == {0, 255}
    np.testing.assert_array_equal(read_mask(tmp_path / "binary.png"), binary)

    multiclass = np.random.default_rng(1).integers(0, 4, (7, 9))
    write_mask_png(tmp_path / "sub" / "multi.png", multiclass)
    np.testing.assert_array_equal(np.asarray(Image.open(tmp_path / "sub" / "multi.png")), multiclass)
    np.testing.assert_array_equal(read_mask(tmp_path / "sub" / "multi.png"), multiclass)
    assert sorted(path.name for path in tmp_path.rglob("*")) == ["binary.png", "multi.png", "sub"]


def test_write_mask_png_refuses_non_labels(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match=r"0\.\.255"):
        write_mask_png(tmp_path / "bad.png", np.full((2, 2), 256))


def test_label_volume_round_trip_keeps_affine(tmp_path: Path) -> None:
    labels = np.random.default_rng(0).integers(0, 3, (4, 5, 6))
    affine = np.diag([0.5, 1.0, 2.0, 1.0])
    affine[:3, 3] = [10, -5, 3]
    path = tmp_path / "labels.nii.gz"
    write_label_volume(path, labels, affine)
    stored = nib.load(path)
    assert stored.get_data_dtype() == np.uint8
    np.testing.assert_allclose(stored.affine, affine)
    np.testing.assert_array_equal(read_label_volume(path), labels)
    assert [p.name for p in tmp_path.iterdir()] == ["labels.nii.gz"]


def test_read_label_volume_accepts_integral_floats_only(tmp_path: Path) -> None:
    labels = np.random.default_rng(0).integers(0, 3, (3, 4, 5)).astype(np.float32)
    nib.save(nib.Nifti1Image(labels, np.eye(4)), tmp_path / "integral.nii.gz")
    np.testing.assert_array_equal(read_label_volume(tmp_path / "integral.nii.gz"), labels)
    nib.save(nib.Nifti1Image(labels + 0.25, np.eye(4)), tmp_path / "fractional.nii")
    with pytest.raises(DataError, match=r"fractional\.nii.*not labels"):
        read_label_volume(tmp_path / "fractional.nii")


def test_read_volume_puts_channels_first(tmp_path: Path) -> None:
    volume = np.random.default_rng(0).normal(size=(3, 4, 5)).astype(np.float32)
    affine = np.diag([2.0, 2.0, 2.0, 1.0])
    nib.save(nib.Nifti1Image(volume, affine), tmp_path / "one.nii.gz")
    nib.save(nib.Nifti1Image(np.stack([volume, 2 * volume], axis=-1), affine), tmp_path / "two.nii.gz")

    data, stored_affine = read_volume(tmp_path / "one.nii.gz")
    assert data.shape == (1, 3, 4, 5) and data.dtype == np.float32
    np.testing.assert_allclose(data[0], volume)
    np.testing.assert_allclose(stored_affine, affine)
    data, _ = read_volume(tmp_path / "two.nii.gz")
    assert data.shape == (2, 3, 4, 5)
    np.testing.assert_allclose(data[1], 2 * volume)


def test_read_volume_corrupt_file_is_a_data_error(tmp_path: Path) -> None:
    path = tmp_path / "broken.nii.gz"
    path.write_bytes(b"\x1f\x8b garbage" * 20)
    with pytest.raises(DataError, match=r"broken\.nii\.gz.*cannot read volume.*valid NIfTI"):
        read_volume(path)
    with pytest.raises(DataError, match="is a volume, not a 2D image"):
        read_image(path)


def test_a_colour_palette_mask_is_read_by_its_indices(tmp_path: Path) -> None:
    """VOC-style masks: label maps whose palette gives each index a colour; they were refused as colour images."""
    labels = np.zeros((8, 8), dtype=np.uint8)
    labels[2:4, 2:4], labels[5:7, 5:7] = 1, 2
    image = Image.fromarray(labels, mode="P")
    image.putpalette([0, 0, 0, 128, 0, 0, 0, 128, 0] + [0] * (256 - 3) * 3)
    image.save(tmp_path / "mask.png")
    np.testing.assert_array_equal(read_mask(tmp_path / "mask.png"), labels)


def test_display_pixels_shows_colour_for_three_channels_and_the_first_modality_otherwise() -> None:
    image = np.stack([np.full((2, 3), value, dtype=np.float32) for value in (0.0, 0.5, 1.0, 2.0, 0.25)])
    assert display_pixels(image[:1]).shape == (2, 3)
    assert display_pixels(image[:3]).shape == (2, 3, 3)
    assert display_pixels(image[:3])[0, 0].tolist() == [0, 128, 255]
    for channels in (2, 4):  # two or four MR modalities: the first in gray, not a false colour
        assert np.array_equal(display_pixels(image[1 : 1 + channels]), np.full((2, 3), 128, dtype=np.uint8))
    assert display_pixels(image[3:4]).max() == 255  # clipped to [0, 1] first
