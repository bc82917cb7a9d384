"""Label maps: stored mask values to contiguous classes and back, and the mask sets refused."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from genseg.data import DataError, LabelMap, index_cases, labels_of, load_samples
from genseg.data.io import COLOUR_LABEL
from genseg.data.labels import label_map


def _pair(root: Path, stem: str, mask: np.ndarray) -> None:
    for folder, pixels in (("images", np.full(mask.shape, 90)), ("masks", mask)):
        (root / folder).mkdir(parents=True, exist_ok=True)
        Image.fromarray(pixels.astype(np.uint8)).save(root / folder / f"{stem}.png")


def _square(value: int, size: int = 8) -> np.ndarray:
    mask = np.zeros((size, size), dtype=np.int64)
    mask[2:5, 2:5] = value
    return mask


def test_gapped_values_become_contiguous_classes_and_come_back() -> None:
    labels = LabelMap((0, 3, 7))
    stored = np.array([[0, 3], [7, 7]])
    classes = labels.encode(stored, Path("m.png"))
    assert classes.tolist() == [[0, 1], [2, 2]] and labels.num_classes == 3
    np.testing.assert_array_equal(labels.decode(classes), stored)
    assert labels.describe() == "label values 0, 3, 7 are classes 0, 1, 2"
    assert LabelMap.from_dict(labels.to_dict()) == labels


def test_a_value_the_training_masks_never_had_is_named_with_its_file() -> None:
    with pytest.raises(DataError, match=r"other\.png.*label value\(s\) 4, which the run's training masks never had "
                                        r"\(they have 0, 1, 2\)"):
        LabelMap((0, 1, 2)).encode(np.array([0, 4, 2]), Path("other.png"))


def test_a_mask_set_of_0_255_and_0_1_files_is_binary() -> None:
    labels = label_map({Path("a.png"): {0, 255}, Path("b.png"): {0, 1}})
    assert labels.values == (0, 1)
    assert labels.encode(np.array([0, 255, 1]), Path("a.png")).tolist() == [0, 1, 1]


def test_0_255_files_beside_multi_class_ones_are_refused_naming_both() -> None:
    with pytest.raises(DataError, match=r"0/255 files \(such as b\.png\) with multi-class ones "
                                        r"\(c\.png holds label 2\)"):
        label_map({Path("a.png"): {0, 1}, Path("b.png"): {0, 255}, Path("c.png"): {0, 1, 2}})


def test_255_beside_other_classes_in_one_file_is_a_class_of_its_own() -> None:
    labels = label_map({Path("a.png"): {0, 128, 255}, Path("b.png"): {0, 255}})
    assert labels.values == (0, 128, 255)
    assert labels.encode(np.array([0, 128, 255]), Path("b.png")).tolist() == [0, 1, 2]
    assert labels.decode(np.array([2, 1])).tolist() == [255, 128]


def test_a_colour_coded_set_reads_a_white_on_black_file_as_the_white_class() -> None:
    red, white = COLOUR_LABEL + 0xFF0000, COLOUR_LABEL + 0xFFFFFF
    labels = label_map({Path("a.png"): {0, red, white}, Path("b.png"): {0, 255}})  # b.png holds no colour
    assert labels.values == (0, red, white) and labels.is_colour
    assert labels.encode(np.array([0, 255, red]), Path("b.png")).tolist() == [0, 2, 1]
    assert labels.describe() == "label values 0, #ff0000, #ffffff are classes 0, 1, 2"
    with pytest.raises(DataError, match=r"label value\(s\) #00ff00, which"):
        labels.encode(np.array([COLOUR_LABEL + 0x00FF00]), Path("c.png"))


def test_masks_that_are_all_background_are_refused() -> None:
    with pytest.raises(DataError, match="background only"):
        label_map({Path("a.png"): {0}, Path("b.png"): {0}}, declared=[0, 1])


def test_a_folder_with_labels_0_and_7_loads_as_two_classes(tmp_path: Path) -> None:
    _pair(tmp_path, "a", _square(7))
    _pair(tmp_path, "b", _square(0))
    index = index_cases(tmp_path)
    labels = labels_of(index, ["a", "b"])
    assert labels.values == (0, 7)
    (sample,) = load_samples(index, ["a"], labels=labels)
    np.testing.assert_array_equal(sample.mask, _square(1))


def test_a_folder_of_0_128_255_masks_loads_as_three_classes(tmp_path: Path) -> None:
    three = _square(128, size=12)
    three[6:10, 6:10] = 255
    _pair(tmp_path, "a", three)
    _pair(tmp_path, "b", _square(255, size=12))  # no 128 here: 255 is still the third class
    index = index_cases(tmp_path)
    labels = labels_of(index, ["a", "b"])
    assert labels.values == (0, 128, 255)
    sample_a, sample_b = load_samples(index, ["a", "b"], labels=labels)
    np.testing.assert_array_equal(sample_a.mask, three // 127)  # 128 -> 1, 255 -> 2
    assert set(np.unique(sample_b.mask).tolist()) == {0, 2}


def test_mixed_0_255_and_multi_class_folders_are_refused_at_the_labels(tmp_path: Path) -> None:
    _pair(tmp_path, "binary", _square(255))
    _pair(tmp_path, "multi", _square(2))
    with pytest.raises(DataError, match=r"binary\.png.*multi\.png holds label 2"):
        labels_of(index_cases(tmp_path), ["binary", "multi"])
