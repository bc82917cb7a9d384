"""Data: finding, reading and checking image-mask pairs, splits and budgets, the demo phantom.

Data flows one way: a data folder is indexed into cases (:func:`index_cases`), a split file
picks the cases of a budget (:func:`budget_ids`), the cases are loaded as 2D samples at their
own size (:func:`load_samples`) and stacked as square tensors (:func:`to_tensors`).

Example:
    >>> from genseg.data import budget_ids, index_cases, load_samples, read_split, to_tensors
    >>> index = index_cases(Path("datasets/jsrt_lung"))  # doctest: +SKIP
    >>> train_ids, val_ids = budget_ids(read_split(Path("jsrt_lung.json")), 0, 7, 2)  # doctest: +SKIP
    >>> train = to_tensors(load_samples(index, train_ids), size=128, num_classes=2)  # doctest: +SKIP
"""

from __future__ import annotations

from genseg.data.discovery import channel_paths, detect_layout, index_cases, index_images
from genseg.data.io import (
    normalize_intensity,
    read_image,
    read_label_volume,
    read_mask,
    read_volume,
    write_label_volume,
    write_mask_png,
)
from genseg.data.labels import LabelMap, value_name
from genseg.data.loading import check_sizes, iter_samples, labels_of, load_samples, volume_geometry, voxel_sides
from genseg.data.phantom import make_phantom, make_volume_phantom
from genseg.data.sample import Case, CaseIndex, Sample
from genseg.data.splits import (
    DEV_CASES,
    Split,
    budget_ids,
    check_split_ids,
    dev_ids,
    fold_ids,
    make_split,
    read_split,
    write_split,
)
from genseg.data.tensors import PairTensors, resize_labels, resize_probabilities, to_tensors
from genseg.errors import DataError

__all__ = [
    "Case",
    "CaseIndex",
    "DataError",
    "LabelMap",
    "PairTensors",
    "Sample",
    "Split",
    "budget_ids",
    "fold_ids",
    "dev_ids",
    "DEV_CASES",
    "channel_paths",
    "check_sizes",
    "check_split_ids",
    "detect_layout",
    "index_cases",
    "index_images",
    "iter_samples",
    "labels_of",
    "load_samples",
    "make_phantom",
    "make_volume_phantom",
    "make_split",
    "normalize_intensity",
    "read_image",
    "read_label_volume",
    "read_mask",
    "read_split",
    "read_volume",
    "resize_labels",
    "resize_probabilities",
    "to_tensors",
    "value_name",
    "volume_geometry",
    "voxel_sides",
    "write_label_volume",
    "write_mask_png",
    "write_split",
]
