"""Finding cases in the folders, nnU-Net and MSD layouts, and the errors for unmatched files."""

from __future__ import annotations

import json
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest
from PIL import Image

from genseg.data import DataError, channel_paths, detect_layout, index_cases, index_images, make_phantom


def _png(path: Path, value: int = 0, size: tuple[int, int] = (8, 8)) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.full(size, value, dtype=np.uint8)).save(path)
    return path


def _nifti(path: Path, shape: tuple[int, ...] = (4, 5, 6)) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    nib.save(nib.Nifti1Image(np.zeros(shape, dtype=np.uint8), np.eye(4)), path)
    return path


def _folders(root: Path, stems: list[str]) -> Path:
    for stem in stems:
        _png(root / "images" / f"{stem}.png")
        _png(root / "masks" / f"{stem}.png")
    return root


def test_folders_layout_matches_by_stem_and_sorts(tmp_path: Path) -> None:
    root = _folders(tmp_path, ["b", "a", "C"])
    _png(root / "images" / "d.jpg")
    _png(root / "masks" / "d.bmp")  # extensions may differ between image and mask
    for junk in ("notes.txt", ".DS_Store", "Thumbs.db", "._a.png"):
        (root / "images" / junk).write_bytes(b"junk")

    index = index_cases(root)
    assert index.layout == "folders" and not index.is_volume
    assert index.ids == ["C", "a", "b", "d"]
    assert index.cases["d"].image_path.name == "d.jpg"
    assert index.cases["d"].mask_path == root / "masks" / "d.bmp"
    assert index.cases["a"].roi_path is None


def test_folders_layout_reads_fov_as_region_of_interest(tmp_path: Path) -> None:
    root = _folders(tmp_path, ["a", "b"])
    for stem in ("a", "b"):
        _png(root / "fov" / f"{stem}.png")
    assert index_cases(root, layout="folders").cases["b"].roi_path == root / "fov" / "b.png"


def test_a_mask_may_add_a_usual_suffix_to_its_images_name(tmp_path: Path) -> None:
    root = tmp_path / "lesions"
    for image, mask in (("ISIC_01", "ISIC_01_segmentation"), ("case 2", "case 2_Mask"), ("x_seg", "x_seg"),
                        ("wound-3", "wound-3-gt")):
        _png(root / "images" / f"{image}.jpg")
        _png(root / "masks" / f"{mask}.png")
    _png(root / "roi" / "ISIC_01_mask.png")
    for stem in ("case 2", "x_seg", "wound-3"):
        _png(root / "roi" / f"{stem}.png")
    index = index_cases(root)
    assert index.ids == ["ISIC_01", "case 2", "wound-3", "x_seg"]
    assert index.cases["case 2"].mask_path.name == "case 2_Mask.png"
    assert index.cases["x_seg"].mask_path.name == "x_seg.png"  # the exact stem wins; nothing is stripped
    assert index.cases["ISIC_01"].roi_path.name == "ISIC_01_mask.png"


def test_image_without_mask_names_the_expected_mask(tmp_path: Path) -> None:
    root = _folders(tmp_path, ["a", "b"])
    _png(root / "images" / "lonely.png")
    with pytest.raises(DataError, match=r"lonely\.png.*image has no mask.*masks/lonely\.<ext>"):
        index_cases(root)


@pytest.mark.parametrize(("extra", "message"), [
    ("masks/orphan.png", r"orphan\.png.*mask has no image.*images/orphan\.<ext>"),
    ("masks/b_mask.png", r"b_mask\.png.*mask has no image"),  # a suffix without its image
    ("masks/a_mask.png", r"two masks for image 'a': a\.png and a_mask\.png; keep one"),
    ("images/a.jpg", r"two files named 'a'.*keep one"),
    ("masks/a_1.png", r"a_1\.png: is a further mask of image a\.png \(numbered, as BUSI's _mask_1\): merge"),
])
def test_a_file_that_matches_no_case_or_two_is_refused(tmp_path: Path, extra: str, message: str) -> None:
    root = _folders(tmp_path, ["a"])
    _png(root / extra)
    with pytest.raises(DataError, match=message):
        index_cases(root)


def test_empty_images_folder_and_unknown_layout(tmp_path: Path) -> None:
    (tmp_path / "images").mkdir()
    (tmp_path / "images" / "readme.txt").write_text("no images here")
    with pytest.raises(DataError, match="no image files in images/"):
        index_cases(tmp_path)
    with pytest.raises(DataError, match="data folder not found"):
        index_cases(tmp_path / "missing")
    (tmp_path / "other").mkdir()
    with pytest.raises(DataError, match="accepted layouts: folders.*nnunet.*msd"):
        index_cases(tmp_path / "other")


@pytest.mark.parametrize(("images", "masks"), [("imgs", "labels"), ("Images", "Ground Truth"), ("img", "GT"),
                                               ("image", "segmentations")])
def test_folders_layout_takes_the_usual_folder_names(tmp_path: Path, images: str, masks: str) -> None:
    for stem in ("a", "b"):
        _png(tmp_path / images / f"{stem}.png")
        _png(tmp_path / masks / f"{stem}_mask.png")
    index = index_cases(tmp_path)
    assert index.layout == "folders" and index.ids == ["a", "b"]
    assert index.cases["b"].image_path == tmp_path / images / "b.png"
    assert index.cases["b"].mask_path == tmp_path / masks / "b_mask.png"


def test_a_mask_folder_is_not_read_as_the_labels_and_two_are_refused(tmp_path: Path) -> None:
    for stem in ("21_training", "22_training"):  # DRIVE: mask/ holds the fields of view
        _png(tmp_path / "images" / f"{stem}.png")
        _png(tmp_path / "mask" / f"{stem}_mask.png")
    with pytest.raises(DataError, match=r"no masks/ folder beside images/.*a mask/ folder is not read as the labels"):
        index_cases(tmp_path)
    for stem in ("21_training", "22_training"):
        _png(tmp_path / "labels" / f"{stem}.png")
        _png(tmp_path / "masks" / f"{stem}.png")
    with pytest.raises(DataError, match=r"two mask folders, labels/ and masks/; keep one"):
        index_cases(tmp_path)


def test_flat_layout_pairs_images_with_their_masks_in_one_folder(tmp_path: Path) -> None:
    root = tmp_path / "benign"
    for stem in ("case (1)", "case (2)", "case (10)"):  # BUSI's names
        _png(root / f"{stem}.png")
        _png(root / f"{stem}_mask.png", value=255)
    assert detect_layout(root) == "flat"
    index = index_cases(root)
    assert index.layout == "flat" and index.ids == ["case (1)", "case (10)", "case (2)"]
    assert index.cases["case (2)"].image_path == root / "case (2).png"
    assert index.cases["case (2)"].mask_path == root / "case (2)_mask.png"
    _png(root / "case (2)_mask_1.png")
    with pytest.raises(DataError, match=r"case \(2\)_mask_1\.png: is a further mask of image case \(2\)\.png"):
        index_cases(root)
    (root / "case (2)_mask_1.png").unlink()
    _png(root / "case (3).png")
    with pytest.raises(DataError, match=r"case \(3\)\.png: image has no mask"):
        index_cases(root)


def test_a_folder_of_flat_subfolders_names_them(tmp_path: Path) -> None:
    for group in ("benign", "malignant"):
        _png(tmp_path / group / "case (1).png")
        _png(tmp_path / group / "case (1)_mask.png")
    (tmp_path / "notes").mkdir()
    with pytest.raises(DataError, match=r"benign/, malignant/ hold images beside their masks.*point --data at one"):
        index_cases(tmp_path)


def test_an_unknown_layout_names_the_folders_it_found(tmp_path: Path) -> None:
    _png(tmp_path / "Original" / "1.png")
    _png(tmp_path / "Ground Truth" / "1.png")
    with pytest.raises(DataError, match=r"found Ground Truth/, Original/: name the image folder images/"):
        index_cases(tmp_path)


def _nnunet(root: Path, cases: list[str], channels: int = 2) -> Path:
    for case in cases:
        for channel in range(channels):
            _png(root / "imagesTr" / f"{case}_{channel:04d}.png", value=10 * channel)
        _png(root / "labelsTr" / f"{case}.png")
    metadata = {
        "channel_names": {str(k): f"modality{k}" for k in range(channels)},
        "labels": {"background": 0, "lesion": 1},
        "numTraining": len(cases),
        "file_ending": ".png",
    }
    (root / "dataset.json").write_text(json.dumps(metadata))
    return root


def test_nnunet_layout_with_two_channels(tmp_path: Path) -> None:
    root = _nnunet(tmp_path, ["case_b", "case_a"])
    assert detect_layout(root) == "nnunet"
    index = index_cases(root)
    assert index.layout == "nnunet" and not index.is_volume
    assert index.ids == ["case_a", "case_b"]
    assert index.labels == {"background": 0, "lesion": 1}
    case = index.cases["case_a"]
    assert case.image_path.name == "case_a_0000.png" and case.mask_path.name == "case_a.png"
    assert [path.name for path in channel_paths(case.image_path)] == ["case_a_0000.png", "case_a_0001.png"]


def test_nnunet_layout_refuses_missing_channels(tmp_path: Path) -> None:
    root = _nnunet(tmp_path, ["a", "b"])
    (root / "imagesTr" / "b_0001.png").unlink()
    with pytest.raises(DataError, match=r"b_0000\.png.*1 channel files, expected 2"):
        index_cases(root, layout="nnunet")
    (root / "imagesTr" / "b_0000.png").rename(root / "imagesTr" / "b_0002.png")
    with pytest.raises(DataError, match=r"case 'b' has channels \[2\]"):
        index_cases(root, layout="nnunet")


def test_nnunet_layout_label_without_image(tmp_path: Path) -> None:
    root = _nnunet(tmp_path, ["a"], channels=1)
    _png(root / "labelsTr" / "z.png")
    with pytest.raises(DataError, match=r"z\.png.*label file has no image"):
        index_cases(root)


def test_msd_layout_with_dataset_json_labels(tmp_path: Path) -> None:
    for name in ("hippo_2", "hippo_1"):
        _nifti(tmp_path / "imagesTr" / f"{name}.nii.gz")
        _nifti(tmp_path / "labelsTr" / f"{name}.nii.gz")
    (tmp_path / "imagesTr" / "._hippo_1.nii.gz").write_bytes(b"macOS resource fork")
    msd_labels = {"0": "background", "2": "posterior", "1": "anterior"}  # MSD / nnU-Net v1: value -> name
    (tmp_path / "dataset.json").write_text(json.dumps({"labels": msd_labels}))
    index = index_cases(tmp_path)
    assert index.layout == "msd" and index.is_volume
    assert index.ids == ["hippo_1", "hippo_2"]
    assert index.labels == {"background": 0, "anterior": 1, "posterior": 2}


@pytest.mark.realdata
def test_msd_hippocampus_real(datasets_dir: Path) -> None:
    root = datasets_dir / "msd_hippocampus"
    index = index_cases(root)
    assert index.layout == "msd" and index.is_volume
    assert len(index.ids) == 260 and index.ids[0] == "hippocampus_001"
    assert index.ids == sorted(index.ids)
    assert index.cases["hippocampus_001"].mask_path == root / "labelsTr" / "hippocampus_001.nii.gz"


@pytest.mark.realdata
def test_jsrt_real_folders_layout(datasets_dir: Path) -> None:
    index = index_cases(datasets_dir / "jsrt_lung")
    assert index.layout == "folders" and len(index.ids) == 246
    assert index.ids[0] == "JPCLN001"


def test_index_images_for_unlabeled_folders(tmp_path: Path) -> None:
    _png(tmp_path / "flat" / "b.png")
    _png(tmp_path / "flat" / "a.tif")
    (tmp_path / "flat" / "notes.txt").write_text("x")
    index = index_images(tmp_path / "flat")
    assert index.ids == ["a", "b"] and index.cases["a"].mask_path is None and not index.is_volume

    for channel in range(2):
        _png(tmp_path / "nnunet" / f"x_{channel:04d}.png")
    grouped = index_images(tmp_path / "nnunet", layout="nnunet")
    assert grouped.ids == ["x"] and grouped.layout == "nnunet"

    _nifti(tmp_path / "volumes" / "v.nii.gz")
    assert index_images(tmp_path / "volumes").is_volume

    (tmp_path / "empty").mkdir()
    with pytest.raises(DataError, match="no image files found"):
        index_images(tmp_path / "empty")


def test_mixing_volumes_and_pictures_is_refused(tmp_path: Path) -> None:
    _png(tmp_path / "a.png")
    _nifti(tmp_path / "b.nii.gz")
    with pytest.raises(DataError, match=r"mixes volumes \(b\.nii\.gz\) and 2D images \(a\.png\)"):
        index_images(tmp_path)


def test_a_broken_link_is_named_not_skipped(tmp_path: Path) -> None:
    root = make_phantom(tmp_path / "data", n_cases=3, size=32)
    (root / "images" / "case_999.png").symlink_to(tmp_path / "gone.png")
    with pytest.raises(DataError, match="case_999.png: is a link to a file that does not exist"):
        index_cases(root)


@pytest.mark.parametrize("where", ["images/scan.dcm", "series1/IM0001"], ids=["images-dcm", "series-folder"])
def test_a_folder_of_dicom_gets_the_conversion_fix(tmp_path: Path, where: str) -> None:
    path = tmp_path / "data" / where
    path.parent.mkdir(parents=True)
    path.write_bytes(bytes(128) + b"DICM" + bytes(64))  # the preamble and mark every DICOM file has
    with pytest.raises(DataError, match=rf"{path.name}: DICOM is not read directly: convert each series .*dcm2niix"):
        index_cases(tmp_path / "data")
