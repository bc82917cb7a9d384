"""Loading indexed cases as 2D samples: normalized images, checked label maps, volume slices.

Intensities are normalized per file (per channel for volumes: channels are modalities), with
:func:`~genseg.data.io.normalize_intensity`, and for a volume once for the whole volume so that
its slices stay comparable.

Example:
    >>> index = index_cases(Path("data/msd_hippocampus"))  # doctest: +SKIP
    >>> slices = load_samples(index, ["hippocampus_001"], axis=0)  # doctest: +SKIP
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

import numpy as np
from PIL import Image

from genseg.data.discovery import channel_paths
from genseg.data.io import normalize_intensity, read_image, read_label_volume, read_mask, read_volume, volume_header
from genseg.data.labels import LabelMap, label_map
from genseg.data.sample import Case, CaseIndex, Sample
from genseg.errors import ConfigError, DataError


def load_samples(
    index: CaseIndex, case_ids: Sequence[str], *, axis: int | None = 0, require_masks: bool = True,
    labels: LabelMap | None = None,
) -> list[Sample]:
    """Load cases as samples: one per 2D image, one per slice of a volume, or whole volumes.
    (:func:`iter_samples` reads them one case at a time.)

    Args:
        index: the indexed data folder.
        case_ids: the cases to load, in this order.
        axis: the volume axis (0, 1 or 2) to slice along, every slice kept; None keeps each
            volume whole, one 3D sample per case (``DataConfig.sample_axis``).
        require_masks: refuse cases without a mask; if False, masks are loaded where present.
        labels: the run's map from stored values to classes; None reads each mask on its own
            ({0, 255} as {0, 1}, other values as stored).

    Returns:
        The samples, case by case (slices in order).

    Raises:
        DataError: unknown case id, image/mask size mismatch, cases with different channel counts,
            or a mask value ``labels`` lacks.
    """
    return list(iter_samples(index, case_ids, axis=axis, require_masks=require_masks, labels=labels))


def iter_samples(
    index: CaseIndex, case_ids: Sequence[str], *, axis: int | None = 0, require_masks: bool = True,
    labels: LabelMap | None = None,
) -> Iterator[Sample]:
    """:func:`load_samples`, one case at a time: a consumer that reduces each case (a fingerprint,
    a resize to the run's size) holds one full-size image at once, not the budget's, which for
    photographs of 12 megapixels is gigabytes."""
    if axis not in (0, 1, 2, None):
        raise ConfigError(f"axis must be 0, 1 or 2, got {axis}")
    file_by_channels: dict[int, Path] = {}
    for case_id in case_ids:
        case = _find_case(index, case_id)
        if require_masks and case.mask_path is None:
            raise DataError(f"case {case_id!r} has no mask; labeled data needs one mask per image", case.image_path)
        paths = channel_paths(case.image_path) if index.layout == "nnunet" else [case.image_path]
        loaded = _load_volume(case, paths, axis, labels) if index.is_volume else [_load_picture(case, paths, labels)]
        file_by_channels.setdefault(loaded[0].image.shape[0], case.image_path)
        if len(file_by_channels) > 1:
            described = " and ".join(f"{path} has {count}" for count, path in file_by_channels.items())
            raise DataError(f"images have different channel counts: {described}; make them all gray or all RGB")
        yield from loaded


def check_sizes(index: CaseIndex, case_ids: Sequence[str]) -> None:
    """Check every case's mask (and region of interest) has its image's size, and for volumes its
    voxel grid (affine), from file headers only.

    Run at the start of training over the whole split, so a bad case outside the budget stops the
    run then, not a later evaluation. Headers give sizes without reading any pixel or label.

    Every 2D image must also have the channels of the first (gray or colour): a model learns one
    kind, and a mix found only at the first validation or at evaluation stopped with a traceback.

    Raises:
        DataError: naming both files of the first case whose sizes differ, or the first image
            whose channels differ from the first image's.
    """
    first: tuple[Path, int] | None = None
    for case_id in case_ids:
        case = _find_case(index, case_id)
        shape, channels, affine = _header(case.image_path, index.is_volume)
        for other in (case.mask_path, case.roi_path):
            if other is not None:
                other_shape, _, other_affine = _header(other, index.is_volume)
                _check_same_shape(case.image_path, shape, other, other_shape)
                if affine is not None:
                    _check_same_grid(case.image_path, affine, other, other_affine)
        first = first or (case.image_path, channels)
        if channels != first[1]:
            kinds = {1: "gray", 3: "colour"}
            raise DataError(f"a {kinds.get(channels, channels)} image among {kinds.get(first[1], first[1])} ones "
                            f"(such as {first[0].name}); convert the images to one kind", case.image_path)


def _header(path: Path, volume: bool) -> tuple[tuple[int, ...], int, np.ndarray | None]:
    """(spatial shape, channels, a volume's affine or None) of an image or mask file, from its
    header where the format allows."""
    if volume:
        shape, affine = volume_header(path)
        return tuple(shape[:3]), shape[3] if len(shape) > 3 else 1, affine
    try:
        with Image.open(path) as image:
            palette = np.asarray(image.getpalette() or [0, 0, 0]).reshape(-1, 3) if image.mode in ("P", "PA") else None
            gray = image.mode in ("1", "L", "LA", "La", "I", "F") or image.mode.startswith("I;") or (
                palette is not None and bool(np.all(palette == palette[:, :1])))
            return (image.height, image.width), 1 if gray else 3, None
    except (OSError, Image.DecompressionBombError):  # TIFF stacks and the like: read it, as loading would
        pixels = read_image(path)
        return tuple(pixels.shape[-2:]), pixels.shape[0], None


def labels_of(index: CaseIndex, case_ids: Sequence[str]) -> LabelMap:
    """The label map of the cases' masks and of the labels the data set declares (nnU-Net's
    dataset.json), which count even where these cases lack one.

    Raises:
        DataError: the masks mix 0/255 files with multi-class ones (see :func:`~genseg.data.labels.label_map`).
    """
    return label_map(_mask_values(index, case_ids), index.labels.values())


def _mask_values(index: CaseIndex, case_ids: Sequence[str]) -> dict[Path, set[int]]:
    """The values each case's mask stores (255 kept)."""
    values = {}
    for case_id in case_ids:
        path = _find_case(index, case_id).mask_path
        if path is not None:
            stored = read_label_volume(path, stored=True) if index.is_volume else read_mask(path, stored=True)
            values[path] = set(np.unique(stored).tolist())
    return values


def volume_geometry(path: Path) -> tuple[tuple[int, int, int], np.ndarray]:
    """The spatial shape and 4x4 affine of a volume file, read from its header only.

    Predictions are written back with this geometry (see
    :func:`~genseg.data.io.write_label_volume`).
    """
    shape, affine = volume_header(Path(path))
    x, y, z = shape[:3]
    return (x, y, z), affine


def voxel_sides(affine: np.ndarray) -> np.ndarray:
    """A volume's voxel size in mm along its three array axes: the lengths of the affine's first three
    columns (the one source of a volume's spacing, whatever the header's pixdim says)."""
    return np.linalg.norm(np.asarray(affine, dtype=np.float64)[:3, :3], axis=0)


def _find_case(index: CaseIndex, case_id: str) -> Case:
    if case_id not in index.cases:
        examples = ", ".join(index.ids[:3])
        raise DataError(
            f"case id {case_id!r} is not in this data folder (it has {len(index.cases)} cases, e.g. {examples}); "
            "split files must list file names without extension",
            index.root,
        )
    return index.cases[case_id]


def _load_picture(case: Case, image_paths: list[Path], labels: LabelMap | None) -> Sample:
    image = _stack_channels(image_paths, _read_normalized_image)
    size = image.shape[1:]
    mask = roi = None
    if case.mask_path is not None:
        mask = _classes(read_mask(case.mask_path, stored=labels is not None), case.mask_path, labels)
        _check_same_shape(case.image_path, size, case.mask_path, mask.shape)
    if case.roi_path is not None:
        roi = read_mask(case.roi_path) > 0
        _check_same_shape(case.image_path, size, case.roi_path, roi.shape)
    return Sample(case.case_id, image, mask, roi)


def _classes(stored: np.ndarray, path: Path, labels: LabelMap | None) -> np.ndarray:
    return stored if labels is None else labels.encode(stored, path)


def _load_volume(case: Case, image_paths: list[Path], axis: int | None, label_map: LabelMap | None
                 ) -> list[Sample]:
    volume = _whole_volume(case, image_paths, label_map)
    return [volume] if axis is None else _slices(volume, axis)


def _whole_volume(case: Case, image_paths: list[Path], label_map: LabelMap | None) -> Sample:
    image = _stack_channels(image_paths, _read_normalized_volume)
    shape, affine = image.shape[1:], volume_header(case.image_path)[1]
    labels = roi = None
    if case.mask_path is not None:
        stored = read_label_volume(case.mask_path, stored=label_map is not None)
        labels = _classes(stored, case.mask_path, label_map)
        _check_same_shape(case.image_path, shape, case.mask_path, labels.shape)
        _check_same_grid(case.image_path, affine, case.mask_path, volume_header(case.mask_path)[1])
    if case.roi_path is not None:
        roi = read_label_volume(case.roi_path) > 0
        _check_same_shape(case.image_path, shape, case.roi_path, roi.shape)
        _check_same_grid(case.image_path, affine, case.roi_path, volume_header(case.roi_path)[1])
    spacing = tuple(float(side) for side in voxel_sides(affine))
    return Sample(case.case_id, image, labels, roi, spacing=spacing)


def _slices(volume: Sample, axis: int) -> list[Sample]:
    image = np.moveaxis(volume.image, axis + 1, 1)
    labels = None if volume.mask is None else np.moveaxis(volume.mask, axis, 0)
    roi = None if volume.roi is None else np.moveaxis(volume.roi, axis, 0)
    return [
        Sample(
            volume.case_id,
            np.ascontiguousarray(image[:, index]),
            None if labels is None else np.ascontiguousarray(labels[index]),
            None if roi is None else np.ascontiguousarray(roi[index]),
            slice_index=index,
            spacing=volume.spacing,
        )
        for index in range(image.shape[1])
    ]


def _read_normalized_image(path: Path) -> np.ndarray:
    return normalize_intensity(read_image(path))


def _read_normalized_volume(path: Path) -> np.ndarray:
    channels, _ = read_volume(path)
    return np.stack([normalize_intensity(channel) for channel in channels])


def _stack_channels(paths: list[Path], read: Callable[[Path], np.ndarray]) -> np.ndarray:
    """Channel files read and stacked as one (C, ...) array; they must share one shape."""
    arrays = [read(path) for path in paths]
    for path, array in zip(paths[1:], arrays[1:]):
        _check_same_shape(paths[0], arrays[0].shape[1:], path, array.shape[1:])
    return arrays[0] if len(arrays) == 1 else np.concatenate(arrays)


def _check_same_grid(image_path: Path, image_affine: np.ndarray, other_path: Path, other_affine: np.ndarray
                     ) -> None:
    """A mask's voxel-to-world affine is its image's, within nnU-Net's tolerance for header rounding
    (rtol 1e-3, atol 1e-4): the same shape on another grid would be trained on misaligned."""
    if not np.allclose(other_affine, image_affine, rtol=1e-3, atol=1e-4):
        difference = float(np.abs(np.asarray(other_affine) - np.asarray(image_affine)).max())
        raise DataError(f"geometry mismatch: its affine differs from its image {image_path.name}'s by up to "
                        f"{difference:.3g} mm; resample it onto the image's voxel grid, or copy the image's header "
                        "if only the header is wrong", other_path)


def _check_same_shape(
    image_path: Path, image_shape: tuple[int, ...], other_path: Path, other_shape: tuple[int, ...]
) -> None:
    if tuple(image_shape) != tuple(other_shape):
        size = "x".join(map(str, image_shape))
        other_size = "x".join(map(str, other_shape))
        raise DataError(
            f"size mismatch: image {image_path} is {size} but {other_path} is {other_size}; "
            "masks must have exactly the size of their image"
        )
