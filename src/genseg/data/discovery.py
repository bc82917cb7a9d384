"""Finding the cases of a data folder: which image goes with which mask, in four layouts.

- ``folders``: ``images/`` and ``masks/`` matched by file stem (extensions may differ), and an
  optional ``roi/`` or ``fov/`` region-of-interest folder matched the same way. The folders may
  have other usual names (``labels/``, ``gt/``, ``Ground Truth/``, ...; see :data:`IMAGE_FOLDERS`
  and :data:`MASK_FOLDERS`). A mask's stem may add one of the usual mask suffixes to the image's
  (``case7.jpg`` and ``case7_mask.png``, ISIC's ``_segmentation``; see :data:`MASK_SUFFIXES`).
  2D images, or volumes (NIfTI, MetaImage, NRRD) when every image is one.
- ``flat``: images and their masks side by side in one folder, each mask named as its image plus
  a mask suffix (BUSI's ``case (4).png`` and ``case (4)_mask.png``).
- ``nnunet``: nnU-Net v2 raw data, ``imagesTr/CASE_0000.ext`` (one file per channel),
  ``labelsTr/CASE.ext`` and ``dataset.json`` (``file_ending``, ``labels``, ``channel_names``).
  A :class:`~genseg.data.sample.Case` keeps the channel-0 file as ``image_path``; the other
  channels are found from it by name (see :func:`channel_paths`).
- ``msd``: Medical Segmentation Decathlon, ``imagesTr/*.nii.gz`` and ``labelsTr/*.nii.gz``
  matched by name; ``dataset.json`` is optional.

Files that are not images (``.txt``, ``Thumbs.db``) and hidden files (``.DS_Store``,
``._case.png``) are ignored. Case ids are the file stems, case-sensitive, sorted.

Example:
    >>> index = index_cases(Path("data/jsrt_lung"))  # doctest: +SKIP
    >>> index.layout, len(index.ids)  # doctest: +SKIP
    ('folders', 246)
"""

from __future__ import annotations

import json
import re
from pathlib import Path

from genseg.config import LAYOUTS
from genseg.data.io import IMAGE_SUFFIXES, VOLUME_SUFFIXES, file_stem, is_image_file, is_volume_file
from genseg.data.sample import Case, CaseIndex
from genseg.errors import ConfigError, DataError

ROI_FOLDERS = ("roi", "fov")
IMAGE_FOLDERS = ("images", "imgs", "image", "img")
"""Names of the image folder of the folders layout, compared ignoring case, spaces and hyphens read as ``_``."""
MASK_FOLDERS = ("masks", "labels", "label", "gt", "ground_truth", "groundtruth", "annotations", "segmentations")
"""Names of its mask folder, compared alike. ``mask/`` is not one: DRIVE's holds fields of view, not labels."""

MASK_SUFFIXES = tuple(f"{mark}{word}" for word in ("mask", "seg", "segmentation", "label", "labels", "gt")
                      for mark in "_-")
"""What a mask's (or region of interest's) file stem may add to its image's, matched ignoring case."""

_ACCEPTED_TYPES = ", ".join(IMAGE_SUFFIXES + VOLUME_SUFFIXES)
_MATCHING = "files are matched by name without extension (a mask may add _mask, _seg, _label or _gt)"
_NUMBERED = re.compile(r"^(?P<first>.+)[_-]\d{1,2}$")  # BUSI's "case (4)_mask_1" beside "case (4)_mask"
_MASK_NAMED = re.compile("(" + "|".join(re.escape(suffix) for suffix in MASK_SUFFIXES) + r")([_-]\d{1,2})?$",
                         re.IGNORECASE)  # a mask beside its image in the flat layout, numbered or not
_CHANNEL_NAME = re.compile(r"^(?P<case>.+)_(?P<channel>\d{4})$")
_ACCEPTED_LAYOUTS = (
    "folders (images/ and masks/ with matching file names, optional roi/ or fov/), "
    "flat (images and masks in one folder, each mask named as its image plus _mask), "
    "nnunet (imagesTr/CASE_0000.ext, labelsTr/CASE.ext and dataset.json), "
    "msd (imagesTr/*.nii.gz and labelsTr/*.nii.gz)"
)
_DICOM_FIX = (
    "DICOM is not read directly: convert each series to one volume (dcm2niix -z y -o OUT SERIES_FOLDER, "
    "or SimpleITK) and the masks (DICOM-SEG, RTSTRUCT) to label volumes, then use the msd or folders layout"
)
_DICOM_SUFFIXES = (".dcm", ".dicom", ".ima")


def index_cases(root: Path, layout: str = "auto") -> CaseIndex:
    """Find the labeled cases under a data folder.

    Args:
        root: the data folder.
        layout: ``"folders"``, ``"flat"``, ``"nnunet"``, ``"msd"``, or ``"auto"`` (see :func:`detect_layout`).

    Returns:
        The cases, sorted by id.

    Raises:
        DataError: the folder is missing, empty, or has images without masks (or the reverse).
    """
    root = Path(root)
    if not root.is_dir():
        raise DataError("data folder not found", root)
    if layout == "auto":
        layout = detect_layout(root)
    if layout == "folders":
        return _index_folders(root)
    if layout == "flat":
        return _index_flat(root)
    if layout == "nnunet":
        return _index_nnunet(root)
    if layout == "msd":
        return _index_msd(root)
    raise ConfigError(f"layout must be auto, {', '.join(LAYOUTS)}; got {layout!r}")


def detect_layout(root: Path) -> str:
    """The layout of a data folder: ``folders`` if it has ``images/`` (or another of
    :data:`IMAGE_FOLDERS`); ``nnunet`` if it has ``dataset.json`` and ``imagesTr/`` files named
    ``CASE_0000.ext``; ``msd`` if ``imagesTr/`` holds volumes; ``flat`` if its own files are
    images and masks named as them plus a mask suffix.
    """
    root = Path(root)
    if _named_folder(root, IMAGE_FOLDERS, "image") is not None:
        return "folders"
    images_dir = root / "imagesTr"
    if images_dir.is_dir():
        files = _data_files(images_dir)
        channel_named = bool(files) and all(_CHANNEL_NAME.match(file_stem(file)) for file in files)
        if (root / "dataset.json").is_file() and channel_named:
            return "nnunet"
        if any(is_volume_file(file) for file in files):
            return "msd"
    if _is_flat(root):
        return "flat"
    subfolders = [folder.name + "/" for folder in _subfolders(root)]
    flat_folders = [folder.name + "/" for folder in _subfolders(root) if _is_flat(folder)]
    if flat_folders:
        raise DataError(f"{', '.join(flat_folders)} {'hold' if len(flat_folders) > 1 else 'holds'} images beside "
                        "their masks (the flat layout): point --data at one of them, or move their files into one "
                        "folder (case names must stay unique)", root)
    found = (f"; found {', '.join(subfolders[:6])}: name the image folder images/ and the mask folder masks/"
             if subfolders else "")
    raise _no_images(f"no known data layout found; accepted layouts: {_ACCEPTED_LAYOUTS}{found}", root)


def index_images(folder: Path, layout: str = "folders") -> CaseIndex:
    """Index an unlabeled folder of images or volumes (e.g. for prediction), or one such file.

    Args:
        folder: the folder, every image or NIfTI file in it a case; or a single file.
        layout: ``"nnunet"`` groups ``CASE_000k`` files into one multi-channel case, as in
            training data of that layout; any other layout takes one file per case.

    Returns:
        Cases without masks, sorted by id.
    """
    folder = Path(folder)
    if layout not in LAYOUTS:
        raise ConfigError(f"layout must be one of {', '.join(LAYOUTS)}; got {layout!r}")
    if folder.is_file():
        if not (is_image_file(folder) or is_volume_file(folder)):
            raise DataError(f"not an image or volume file; accepted types: {_ACCEPTED_TYPES}", folder)
        case = Case(file_stem(folder), folder)
        return CaseIndex(root=folder.parent, layout="folders", cases={case.case_id: case},
                         is_volume=_all_volumes([folder]))
    if not folder.is_dir():
        raise DataError("image folder or file not found", folder)
    files = _data_files(folder)
    if not files:
        raise _no_images(f"no image files found; accepted types: {_ACCEPTED_TYPES}", folder)
    if layout == "nnunet":
        images = {case_id: paths[0] for case_id, paths in _channel_groups(files).items()}
    else:
        images = _by_stem(files)
    cases = {case_id: Case(case_id, images[case_id]) for case_id in sorted(images)}
    return CaseIndex(root=folder, layout=layout, cases=cases, is_volume=_all_volumes(files))


def channel_paths(image_path: Path) -> list[Path]:
    """The channel files of an nnU-Net case, from its channel-0 file: ``CASE_0000.ext``,
    ``CASE_0001.ext``, ... for as long as they exist.

    Args:
        image_path: the ``CASE_0000.ext`` file (``Case.image_path`` in the nnunet layout).
    """
    stem = file_stem(image_path)
    match = _CHANNEL_NAME.match(stem)
    if match is None or int(match["channel"]) != 0:
        raise DataError("nnU-Net image names must end in _0000 (the channel) before the extension", image_path)
    suffix = image_path.name[len(stem) :]
    paths = [image_path]
    while (next_path := image_path.with_name(f"{match['case']}_{len(paths):04d}{suffix}")).is_file():
        paths.append(next_path)
    return paths


def _index_folders(root: Path) -> CaseIndex:
    images_dir = _named_folder(root, IMAGE_FOLDERS, "image")
    if images_dir is None:
        raise DataError(f"no images/ folder (or {_listed(IMAGE_FOLDERS[1:])}); the folders layout needs one "
                        "beside masks/", root)
    image_files = _data_files(images_dir)
    if not image_files:
        raise _no_images(f"no image files in {images_dir.name}/; accepted types: {_ACCEPTED_TYPES}", images_dir)
    masks_dir = _named_folder(root, MASK_FOLDERS, "mask")
    if masks_dir is None:
        drive = (" (a mask/ folder is not read as the labels: DRIVE's holds fields of view)"
                 if (root / "mask").is_dir() else "")
        raise DataError(f"no masks/ folder beside {images_dir.name}/ (or {_listed(MASK_FOLDERS[1:])}){drive}; "
                        "add one mask per image, named like the image", root / "masks")
    images = _by_stem(image_files)
    masks = _by_image_stem(_by_stem(_data_files(masks_dir)), images)
    _check_matched(images, images_dir, masks, masks_dir, "mask")
    rois: dict[str, Path] = {}
    roi_dir = next((root / name for name in ROI_FOLDERS if (root / name).is_dir()), None)
    if roi_dir is not None:
        rois = _by_image_stem(_by_stem(_data_files(roi_dir)), images)
        _check_matched(images, images_dir, rois, roi_dir, "region-of-interest mask")
    cases = {stem: Case(stem, images[stem], masks[stem], rois.get(stem)) for stem in sorted(images)}
    return CaseIndex(root=root, layout="folders", cases=cases, is_volume=_all_volumes(image_files))


def _index_flat(root: Path) -> CaseIndex:
    files = _data_files(root)
    if not files:
        raise _no_images(f"no image files found; accepted types: {_ACCEPTED_TYPES}", root)
    images = _by_stem([file for file in files if not _MASK_NAMED.search(file_stem(file))])
    masks = _by_image_stem(_by_stem([file for file in files if _MASK_NAMED.search(file_stem(file))]), images)
    _check_matched(images, root, masks, root, "mask")
    cases = {stem: Case(stem, images[stem], masks[stem]) for stem in sorted(images)}
    return CaseIndex(root=root, layout="flat", cases=cases, is_volume=_all_volumes(list(images.values())))


def _is_flat(folder: Path) -> bool:
    """Whether a folder's own files include an image and a mask named as it plus a mask suffix."""
    stems = {file_stem(file).lower() for file in _data_files(folder)}
    return any(match is not None and stem[: match.start()] in stems
               for stem in stems for match in [_MASK_NAMED.search(stem)])


def _named_folder(root: Path, names: tuple[str, ...], kind: str) -> Path | None:
    """The subfolder of ``root`` with one of ``names`` (see :data:`IMAGE_FOLDERS`), if there is one."""
    found = [folder for folder in _subfolders(root)
             if folder.name.lower().replace(" ", "_").replace("-", "_") in names]
    if len(found) > 1:
        raise DataError(f"has two {kind} folders, {found[0].name}/ and {found[1].name}/; keep one", root)
    return found[0] if found else None


def _listed(folders: tuple[str, ...]) -> str:
    return ", ".join(f"{name}/" for name in folders)


def _subfolders(root: Path) -> list[Path]:
    return sorted(path for path in root.iterdir() if path.is_dir() and not path.name.startswith("."))


def _index_nnunet(root: Path) -> CaseIndex:
    metadata = _read_dataset_json(root / "dataset.json")
    ending = str(metadata.get("file_ending", ".nii.gz"))  # nnU-Net v1 had no file_ending: NIfTI
    if ending.lower() not in IMAGE_SUFFIXES + VOLUME_SUFFIXES:
        raise DataError(f"file_ending {ending!r} is not supported; use one of {_ACCEPTED_TYPES}", root / "dataset.json")
    images_dir, labels_dir = root / "imagesTr", root / "labelsTr"
    image_files = [file for file in _data_files(images_dir) if file.name.endswith(ending)]
    if not image_files:
        raise DataError(f"no {ending} files in imagesTr/ (file_ending in dataset.json)", images_dir)
    groups = _channel_groups(image_files)
    _check_channel_count(groups, len(metadata.get("channel_names") or metadata.get("modality") or {}))
    images = {case_id: paths[0] for case_id, paths in groups.items()}
    labels = _by_stem([file for file in _data_files(labels_dir) if file.name.endswith(ending)])
    _check_matched(images, images_dir, labels, labels_dir, "label file")
    cases = {case_id: Case(case_id, images[case_id], labels[case_id]) for case_id in sorted(images)}
    return CaseIndex(
        root=root,
        layout="nnunet",
        cases=cases,
        is_volume=ending.lower() in VOLUME_SUFFIXES,
        labels=_label_values(metadata, root / "dataset.json"),
    )


def _index_msd(root: Path) -> CaseIndex:
    images_dir, labels_dir = root / "imagesTr", root / "labelsTr"
    image_files = [file for file in _data_files(images_dir) if is_volume_file(file)]
    if not image_files:
        raise DataError(f"no volumes ({', '.join(VOLUME_SUFFIXES)}) in imagesTr/", images_dir)
    if not labels_dir.is_dir():
        raise DataError("no labelsTr/ beside imagesTr/; add one label volume per image, named like it", labels_dir)
    images = _by_stem(image_files)
    labels = _by_stem([file for file in _data_files(labels_dir) if is_volume_file(file)])
    _check_matched(images, images_dir, labels, labels_dir, "label volume")
    json_path = root / "dataset.json"
    label_values = _label_values(_read_dataset_json(json_path), json_path) if json_path.is_file() else {}
    cases = {stem: Case(stem, images[stem], labels[stem]) for stem in sorted(images)}
    return CaseIndex(root=root, layout="msd", cases=cases, is_volume=True, labels=label_values)


def _no_images(message: str, folder: Path) -> DataError:
    """The error for a folder without data files: DICOM's fix instead, if it holds DICOM."""
    dicom = _a_dicom_file(folder)
    return DataError(_DICOM_FIX, dicom) if dicom is not None else DataError(message, folder)


def _a_dicom_file(folder: Path, looked_at: int = 64) -> Path | None:
    """A DICOM file in ``folder`` or one level below (series folders), by suffix or by the
    ``DICM`` mark at byte 128 (DICOM files often have no suffix); the first ``looked_at`` files only."""
    candidates = sorted(path for path in (*folder.glob("*"), *folder.glob("*/*")) if path.is_file())[:looked_at]
    for path in candidates:
        if path.suffix.lower() in _DICOM_SUFFIXES:
            return path
        try:
            with path.open("rb") as handle:
                if handle.read(132)[128:] == b"DICM":
                    return path
        except OSError:
            continue
    return None


def _data_files(folder: Path) -> list[Path]:
    """Image and volume files in a folder, sorted; other and hidden files are skipped.

    Raises:
        DataError: a link named like a data file points nowhere (a case would vanish without a word).
    """
    if not folder.is_dir():
        return []
    named = [path for path in folder.iterdir() if is_image_file(path) or is_volume_file(path)]
    broken = [path for path in named if path.is_symlink() and not path.exists()]
    if broken:
        raise DataError("is a link to a file that does not exist; restore its target or remove the link", broken[0])
    return sorted(path for path in named if path.is_file())


def _by_stem(files: list[Path]) -> dict[str, Path]:
    """Files keyed by stem; two files with one stem are ambiguous."""
    by_stem: dict[str, Path] = {}
    for file in files:
        stem = file_stem(file)
        if stem in by_stem:
            raise DataError(f"two files named {stem!r}: {by_stem[stem].name} and {file.name}; keep one", file.parent)
        by_stem[stem] = file
    return by_stem


def _by_image_stem(masks: dict[str, Path], images: dict[str, Path]) -> dict[str, Path]:
    """Masks keyed by the stem of their image: their own stem, or it less one of :data:`MASK_SUFFIXES`
    where only that names an image. Masks that match no image keep their stem (reported later)."""
    keyed: dict[str, Path] = {}
    for stem, path in masks.items():
        key = stem
        if stem not in images:
            key = next((stem[: -len(suffix)] for suffix in MASK_SUFFIXES
                        if stem.lower().endswith(suffix) and stem[: -len(suffix)] in images), stem)
        if key in keyed:
            raise DataError(f"two masks for image {key!r}: {keyed[key].name} and {path.name}; keep one", path.parent)
        keyed[key] = path
    return keyed


def _channel_groups(files: list[Path]) -> dict[str, list[Path]]:
    """nnU-Net channel files grouped by case: case id -> its files ``_0000``, ``_0001``, ..."""
    groups: dict[str, dict[int, Path]] = {}
    for file in files:
        match = _CHANNEL_NAME.match(file_stem(file))
        if match is None:
            raise DataError("nnU-Net image names must end in _0000, _0001, ... (the channel) before the suffix", file)
        groups.setdefault(match["case"], {})[int(match["channel"])] = file
    for case_id, channels in groups.items():
        if sorted(channels) != list(range(len(channels))):
            raise DataError(
                f"case {case_id!r} has channels {sorted(channels)}; number them _0000, _0001, ... without gaps",
                files[0].parent,
            )
    return {case_id: [channels[k] for k in range(len(channels))] for case_id, channels in groups.items()}


def _check_channel_count(groups: dict[str, list[Path]], declared: int) -> None:
    """Every case has the channel count of dataset.json (or of the first case if it declares none)."""
    expected = declared or len(next(iter(groups.values())))
    for paths in groups.values():
        if len(paths) != expected:
            raise DataError(
                f"case has {len(paths)} channel files, expected {expected} (channel_names in dataset.json)", paths[0]
            )


def _check_matched(
    images: dict[str, Path], images_dir: Path, others: dict[str, Path], others_dir: Path, kind: str
) -> None:
    """Every image has its ``kind`` file of the same stem, and every such file has its image."""
    unmatched = [stem for stem in images if stem not in others]
    if unmatched:
        more = f" ({len(unmatched) - 1} more images lack one)" if len(unmatched) > 1 else ""
        raise DataError(
            f"image has no {kind}: expected {others_dir / unmatched[0]}.<ext>{more}; {_MATCHING}",
            images[unmatched[0]],
        )
    orphans = [stem for stem in others if stem not in images]
    for stem in orphans:
        numbered = _NUMBERED.match(stem)
        image = _image_of(numbered["first"], others, images) if numbered else None
        if image is not None:
            raise DataError(f"is a further {kind} of image {image.name} (numbered, as BUSI's _mask_1): merge each "
                            f"image's {kind}s into one file (their union, or one label value each)", others[stem])
    if orphans:
        more = f" ({len(orphans) - 1} more lack one)" if len(orphans) > 1 else ""
        raise DataError(
            f"{kind} has no image: expected {images_dir / orphans[0]}.<ext>{more}; {_MATCHING}",
            others[orphans[0]],
        )


def _image_of(stem: str, others: dict[str, Path], images: dict[str, Path]) -> Path | None:
    """The image whose mask (or region of interest) has file stem ``stem``, if there is one."""
    key = next((key for key, path in others.items() if file_stem(path) == stem), None)
    return images.get(key) if key is not None else None


def _all_volumes(files: list[Path]) -> bool:
    """True if every file is a volume; a mix of volumes and 2D images is refused."""
    volumes = [file for file in files if is_volume_file(file)]
    if volumes and len(volumes) != len(files):
        picture = next(file for file in files if not is_volume_file(file))
        raise DataError(
            f"mixes volumes ({volumes[0].name}) and 2D images ({picture.name}); keep one kind", files[0].parent
        )
    return bool(volumes)


def _read_dataset_json(path: Path) -> dict:
    if not path.is_file():
        raise DataError("dataset.json not found; the nnunet layout needs it (file_ending, labels, channel_names)", path)
    try:
        metadata = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
        raise DataError(f"cannot read dataset.json: {error}", path) from error
    if not isinstance(metadata, dict):
        raise DataError("dataset.json must hold a JSON object", path)
    return metadata


def _label_values(metadata: dict, path: Path) -> dict[str, int]:
    """Class name -> label value, from nnU-Net v2 ``{"name": 1}`` or MSD/v1 ``{"1": "name"}``."""
    labels = metadata.get("labels") or {}
    if not isinstance(labels, dict):
        raise DataError("labels in dataset.json must be an object of class name -> value", path)
    if all(key.isdigit() and isinstance(name, str) for key, name in labels.items()):
        labels = {name: int(key) for key, name in labels.items()}
    for name, value in labels.items():
        if not isinstance(value, int) or isinstance(value, bool):
            raise DataError(f"label {name!r} has value {value!r}; only integer labels are supported (no regions)", path)
    return dict(sorted(labels.items(), key=lambda item: item[1]))
