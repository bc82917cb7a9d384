"""Reading and writing single image, mask and volume files, with errors that name the fix.

Every reader returns plain numpy arrays in one convention:

- 2D images: float32 ``(C, H, W)``, C = 1 (gray) or 3 (RGB; alpha dropped, palettes resolved);
- 2D masks: int64 ``(H, W)`` label maps, 0 = background;
- volumes: float32 ``(C, X, Y, Z)`` (a 4D volume's last axis is the channel axis) and int64
  ``(X, Y, Z)`` label volumes, with a 4x4 voxel-to-world affine in RAS (NIfTI's convention; the
  ITK formats are converted to it in :mod:`genseg.data.itk_volumes`).

Example:
    >>> image = normalize_intensity(read_image(Path("images/case_000.png")))  # doctest: +SKIP
    >>> labels = read_mask(Path("masks/case_000.png"))  # doctest: +SKIP
"""

from __future__ import annotations

import logging
import os
import tempfile
from collections.abc import Callable
from pathlib import Path

import nibabel as nib
import numpy as np
import tifffile
from PIL import Image

from genseg.data.itk_volumes import ITK_SUFFIXES, itk_header, read_itk, write_itk
from genseg.errors import DataError

log = logging.getLogger(__name__)
_warned_lossy: set[Path] = set()

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".gif")
NIFTI_SUFFIXES = (".nii", ".nii.gz")
VOLUME_SUFFIXES = NIFTI_SUFFIXES + ITK_SUFFIXES
MAX_LABEL = 255
"""Stored gray label values are 8-bit."""
COLOUR_LABEL = 1 << 24
"""A colour-coded mask (one colour per class, as annotation tools export them) stores the class of
colour (r, g, b) as the value ``COLOUR_LABEL + (r << 16 | g << 8 | b)``; black is 0, the background."""
PLAIN_LABELS = 31
"""Values up to this are labels as they are. Larger ones (0/128/255 masks drawn to be seen) are
labels only where :func:`_visible_labels` says so, because antialiasing and compression also make them."""
_VISIBLE_MAX_VALUES = 16
_VISIBLE_MIN_GAP = 16

_TIFF_SUFFIXES = (".tif", ".tiff")
_LOSSY_SUFFIXES = (".jpg", ".jpeg")
_LOSSY_MIDDLE = 0.02
"""The largest share of a JPEG mask's pixels that may lie between its dark and bright modes (32..223)
for it to be read as a binary mask that compression smeared."""
_GRAY_MODES = ("L", "I", "F", "I;16", "I;16L", "I;16B", "I;16N")
_NIFTI_FIX = "check the file is a valid NIfTI (.nii/.nii.gz) file"
_SINGLE_FILE = {".nii": ".nii.gz", ".mhd": ".mha", ".nhdr": ".nrrd"}
_WRITABLE_VOLUMES = (".nii.gz", ".nii", ".mha", ".nrrd")
_MASK_FIX = (
    "save masks as PNG with 0 = background and 1..K or 255 = foreground; "
    "JPEG compression corrupts label values"
)


def file_suffix(path: Path) -> str:
    """The lower-case file type suffix, with ``.nii.gz`` as one suffix."""
    name = path.name.lower()
    return ".nii.gz" if name.endswith(".nii.gz") else path.suffix.lower()


def file_stem(path: Path) -> str:
    """The file name without its type suffix (``case.nii.gz`` -> ``case``); case is kept."""
    return path.name[: len(path.name) - len(file_suffix(path))]


def is_image_file(path: Path) -> bool:
    """Whether ``path`` is a 2D image file genseg reads (hidden files such as ``._x.png`` are not)."""
    return not path.name.startswith(".") and file_suffix(path) in IMAGE_SUFFIXES


def is_volume_file(path: Path) -> bool:
    """Whether ``path`` is a NIfTI, MetaImage or NRRD volume (hidden files are not)."""
    return not path.name.startswith(".") and file_suffix(path) in VOLUME_SUFFIXES


def volume_output_suffix(path: Path) -> str:
    """The type a volume derived from ``path`` is written as: the input's own, in its single-file
    form (``.mhd`` -> ``.mha``, ``.nhdr`` -> ``.nrrd``), and NIfTI compressed."""
    suffix = file_suffix(path)
    return _SINGLE_FILE.get(suffix, suffix)


def normalize_intensity(image: np.ndarray) -> np.ndarray:
    """Map an image to [0, 1] by its 0.5 and 99.5 percentiles, clipping the tails.

    The percentiles are taken over all channels jointly, so RGB colour balance is kept. If they
    coincide (a nearly constant image) the minimum and maximum are used; a constant image
    becomes zeros.

    Args:
        image: array of any shape and numeric dtype.

    Returns:
        float32 array of the same shape with values in [0, 1].
    """
    values = image.astype(np.float32, copy=False)
    low, high = np.percentile(values, [0.5, 99.5])
    if high <= low:
        low, high = float(values.min()), float(values.max())
    if high <= low:
        return np.zeros_like(values)
    return np.clip((values - low) / (high - low), 0.0, 1.0).astype(np.float32)


def display_pixels(image: np.ndarray) -> np.ndarray:
    """A (C, H, W) image in [0, 1] as the uint8 picture a PNG shows: (H, W, 3) colour for three
    channels, else (H, W) gray of the first channel (one of several modalities is shown, not a
    false-colour mix of them)."""
    pixels = (np.clip(image, 0.0, 1.0) * 255).round().astype(np.uint8)
    return np.moveaxis(pixels, 0, -1) if pixels.shape[0] == 3 else pixels[0]


def read_image(path: Path) -> np.ndarray:
    """Read a 2D image file (PNG, JPEG, BMP, TIFF, GIF) with its raw intensities.

    Args:
        path: the image file.

    Returns:
        float32 array (C, H, W): C = 1 for gray, 3 for colour. Not normalized; see
        :func:`normalize_intensity`.
    """
    pixels = _read_pixels(Path(path))
    pixels = pixels[None] if pixels.ndim == 2 else np.moveaxis(pixels, -1, 0)
    return np.ascontiguousarray(pixels, dtype=np.float32)


def read_mask(path: Path, *, stored: bool = False) -> np.ndarray:
    """Read a 2D label map: {0, 255} becomes {0, 1} (unless ``stored``); labels 0..31 are kept, and
    larger values where they are drawn to be seen (:func:`_visible_labels`: 0/128/255, 0/85/170/255).

    An RGB mask whose three channels are equal is read as gray; a palette image (PNG or GIF with a
    colour table, as VOC-style masks are) by its palette indices, whatever their colours; other RGB
    masks by their colours, one class each (:data:`COLOUR_LABEL`), where they are drawn to be seen
    as :func:`_visible_labels` judges gray values. A JPEG
    mask of black and white (as Kvasir-SEG's are) is thresholded at 128, with a warning once per
    folder, because compression leaves gray values at its edges; other JPEG masks are refused.

    Args:
        path: the mask file.
        stored: keep a binary file's 255 as stored, for :func:`~genseg.data.labels.label_map`,
            which reads a mask set's values as a whole.

    Returns:
        int64 array (H, W).

    Raises:
        DataError: the values are not labels (JPEG noise, gray ramps, colours, fractions).
    """
    path = Path(path)
    indices = _palette_indices(path)
    if indices is not None:  # a colour-palette mask (VOC-style): its indices are the labels
        return _as_labels(indices, path, stored)
    pixels = _read_pixels(path)
    if file_suffix(path) in _LOSSY_SUFFIXES:
        binary = _binary_from_lossy(pixels)
        if binary is not None:
            _warn_lossy_once(path)
            return _as_labels(binary, path, stored)
    if pixels.ndim == 3:
        if not (np.array_equal(pixels[..., 0], pixels[..., 1]) and np.array_equal(pixels[..., 0], pixels[..., 2])):
            return _colour_labels(pixels, path)
        pixels = pixels[..., 0]
    return _as_labels(pixels, path, stored)


def colour_values(pixels: np.ndarray) -> np.ndarray:
    """Label values (H, W) of 8-bit colours (H, W, 3): 0 for black, else :data:`COLOUR_LABEL` + rgb."""
    rgb = (pixels[..., 0].astype(np.int64) << 16) | (pixels[..., 1].astype(np.int64) << 8) | pixels[..., 2]
    return np.where(rgb == 0, 0, COLOUR_LABEL + rgb)


def value_colours(values: np.ndarray) -> np.ndarray:
    """8-bit colours (H, W, 3) of label values: colour codes as their colour, a gray value v as (v, v, v)."""
    values = np.asarray(values, dtype=np.int64)
    rgb = np.where(values >= COLOUR_LABEL, values - COLOUR_LABEL, values * 0x010101)
    return np.stack([(rgb >> 16) & 255, (rgb >> 8) & 255, rgb & 255], axis=-1).astype(np.uint8)


def _colour_labels(pixels: np.ndarray, path: Path) -> np.ndarray:
    """The label values of a colour-coded mask: at most 16 colours of 8 bits, each two at least 16
    apart in some channel, each filling a region (antialiased edges fail, as for gray values)."""
    colours = np.unique(pixels.reshape(-1, 3), axis=0).astype(np.int64)
    values = colour_values(pixels)
    if (pixels.max() <= MAX_LABEL and len(colours) <= _VISIBLE_MAX_VALUES and _apart(colours)
            and _fill_regions(values, np.unique(values))):
        return values
    raise DataError(f"mask is a colour image whose {len(colours)} colours are not one per class (too many, too "
                    f"close, or only on edges); {_MASK_FIX}", path)


def _apart(colours: np.ndarray) -> bool:
    gaps = np.abs(colours[:, None] - colours[None]).max(axis=-1)
    return bool(np.all(gaps[~np.eye(len(colours), dtype=bool)] >= _VISIBLE_MIN_GAP))


def _binary_from_lossy(pixels: np.ndarray) -> np.ndarray | None:
    """A black-and-white mask that JPEG compression smeared, as 0/255 (thresholded at 128); None if
    it has no bright mode or too many pixels between the modes to be one."""
    gray = pixels.mean(axis=-1) if pixels.ndim == 3 else pixels.astype(np.float32)
    if gray.max(initial=0) < 224 or np.mean((gray >= 32) & (gray < 224)) > _LOSSY_MIDDLE:
        return None
    return np.where(gray >= 128, 255, 0).astype(np.uint8)


def _warn_lossy_once(path: Path) -> None:
    if path.parent not in _warned_lossy:
        _warned_lossy.add(path.parent)
        log.warning("%s: JPEG masks read as binary, thresholded at 128 (compression blurs their edges); "
                    "save masks as PNG to keep them exact", path.parent)


def read_volume(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """Read an image volume with its raw intensities (NIfTI scale factors applied).

    Args:
        path: a NIfTI, MetaImage or NRRD file (:data:`VOLUME_SUFFIXES`) holding a 3D volume, or a
            4D or vector one (channels last); a 2D NIfTI image is read as one slice (X, Y, 1).

    Returns:
        float32 array (C, X, Y, Z) and the 4x4 voxel-to-world affine.
    """
    path = Path(path)
    data, affine = _volume_voxels(path, np.float32)
    if data.ndim == 3:
        data = data[None]
    elif data.ndim == 4:
        data = np.moveaxis(data, -1, 0)
    else:
        raise DataError(f"expected a 3D volume (or 4D with channels last), got shape {data.shape}", path)
    return np.ascontiguousarray(data), affine


def read_label_volume(path: Path, *, stored: bool = False) -> np.ndarray:
    """Read a label volume with the rules of :func:`read_mask` (float integers allowed).

    Args:
        path: a volume file (:data:`VOLUME_SUFFIXES`); a trailing axis of size 1 is dropped.
        stored: keep a binary volume's 255 as stored (see :func:`read_mask`).

    Returns:
        int64 array (X, Y, Z).
    """
    path = Path(path)
    data, _ = _volume_voxels(path, None)
    if data.ndim == 4 and data.shape[-1] == 1:
        data = data[..., 0]
    if data.ndim != 3:
        raise DataError(f"expected a 3D label volume, got shape {data.shape}", path)
    return _as_labels(data, path, stored)


def volume_header(path: Path) -> tuple[tuple[int, ...], np.ndarray]:
    """(shape ``(X, Y, Z[, C])``, 4x4 affine) of a volume file, from its header only; a 2D NIfTI
    image is one slice, ``(X, Y, 1)``, as :func:`read_volume` reads it."""
    path = Path(path)
    _check_volume_file(path)
    if file_suffix(path) in ITK_SUFFIXES:
        return itk_header(path)
    volume = _load_nifti(path)
    shape = tuple(int(side) for side in volume.shape)
    return (*shape, 1) if len(shape) == 2 else shape, volume.affine


def _volume_voxels(path: Path, dtype: type | None) -> tuple[np.ndarray, np.ndarray]:
    """A volume file's voxels (X, Y, Z[, C]) as ``dtype`` (None keeps the stored type) and its affine."""
    _check_volume_file(path)
    if file_suffix(path) in ITK_SUFFIXES:
        data, affine = read_itk(path)
        return (data if dtype is None else data.astype(dtype, copy=False)), affine
    volume = _load_nifti(path)
    data = _nifti_data(volume, path, dtype)
    return (data[..., None] if data.ndim == 2 else data), volume.affine  # a 2D image: one slice


def _check_volume_file(path: Path) -> None:
    _check_is_file(path)
    if not is_volume_file(path):
        raise DataError(f"not a volume file; volumes must end in {', '.join(VOLUME_SUFFIXES)}", path)


def _load_nifti(path: Path) -> nib.Nifti1Image:
    """Open a NIfTI file (header now, voxels on demand) or raise a :class:`DataError`."""
    try:
        return nib.load(path)
    except Exception as error:  # nibabel raises many types; users need one message
        raise DataError(f"cannot read volume: {error}; {_NIFTI_FIX}", path) from error


def write_mask_png(path: Path, labels: np.ndarray, *, colour: bool = False) -> None:
    """Write a label map as an 8-bit PNG: binary as 0/255, several classes as their values, or
    (``colour``) as an RGB image of their colours (:data:`COLOUR_LABEL`).

    Args:
        path: the PNG file to write (atomically: no half-written file is ever visible).
        labels: integer array (H, W) with values 0..255, or colour codes.
        colour: write RGB, as the colour-coded masks the labels came from, even where a file
            holds only the background.
    """
    labels = _checked_labels(labels, ndim=2, colour=colour)
    if colour:
        pixels = value_colours(labels)
    else:
        pixels = (labels * 255 if labels.max(initial=0) <= 1 else labels).astype(np.uint8)
    atomic_write(Path(path), lambda temp: Image.fromarray(pixels).save(temp, format="PNG"))


def write_label_volume(path: Path, labels: np.ndarray, affine: np.ndarray) -> None:
    """Write a label volume as uint8 voxels with the given voxel-to-world affine.

    Args:
        path: the file to write (atomically): NIfTI, ``.mha`` or ``.nrrd``, by its suffix.
        labels: integer array (X, Y, Z) with values 0..255.
        affine: 4x4 affine, usually the input volume's (see :func:`read_volume`).
    """
    _write_volume(Path(path), _checked_labels(labels, ndim=3).astype(np.uint8), affine)


def write_image_volume(path: Path, image: np.ndarray, affine: np.ndarray) -> None:
    """Write an image volume as float32 voxels (one channel: 3D; several: 4D, channels last, as
    :func:`read_volume` reads them).

    Args:
        path: the file to write (atomically): NIfTI, ``.mha`` or ``.nrrd``, by its suffix.
        image: float array (C, X, Y, Z).
        affine: 4x4 voxel-to-world affine.
    """
    if image.ndim != 4:
        raise ValueError(f"expected an image volume (C, X, Y, Z), got shape {image.shape}")
    data = image[0] if image.shape[0] == 1 else np.moveaxis(image, 0, -1)
    _write_volume(Path(path), np.ascontiguousarray(data, dtype=np.float32), affine)


def _write_volume(path: Path, data: np.ndarray, affine: np.ndarray) -> None:
    suffix = file_suffix(path)
    if suffix not in _WRITABLE_VOLUMES:
        raise ValueError(f"cannot write a volume as {suffix!r}; use one of {', '.join(_WRITABLE_VOLUMES)}")
    if suffix in ITK_SUFFIXES:
        atomic_write(path, lambda temp: write_itk(temp, data, affine))
    else:
        volume = nib.Nifti1Image(data, np.asarray(affine, dtype=np.float64))
        atomic_write(path, lambda temp: nib.save(volume, temp))


TEMPORARY_MARK = ".genseg-partial-"
"""In the name of every temporary file :func:`atomic_write` makes, so a stale one is recognisable."""


def atomic_write(path: Path, write: Callable[[Path], object]) -> None:
    """Call ``write`` on a temporary file beside ``path``, then move it onto ``path``.

    The temporary name keeps the suffix so writers that look at it (nibabel's ``.gz``) behave.
    The file gets the mode a plain ``open`` would give it (0644 under the usual umask), not the
    private 0600 of a temporary file. A process killed outright (SIGKILL) leaves its temporary
    file behind: :func:`remove_stale_temporaries` clears a folder's.

    Args:
        path: the final file; its folder is created if needed.
        write: writes the file it is given.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temp_name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}{TEMPORARY_MARK}",
                                         suffix=file_suffix(path))
    os.close(handle)
    temp = Path(temp_name)
    try:
        write(temp)
        os.chmod(temp, 0o666 & ~_umask())
        os.replace(temp, path)
    finally:
        temp.unlink(missing_ok=True)


def remove_stale_temporaries(folder: Path) -> list[Path]:
    """Delete the temporary files killed writers left in ``folder``; call it only while owning the folder."""
    stale = sorted(Path(folder).glob(f".*{TEMPORARY_MARK}*"))
    for path in stale:
        path.unlink(missing_ok=True)
    return stale


def _umask() -> int:
    mask = os.umask(0)  # the only portable way to read it is to set it
    os.umask(mask)
    return mask


def _check_is_file(path: Path) -> None:
    if not path.is_file():
        raise DataError("file not found", path)


def _palette_indices(path: Path) -> np.ndarray | None:
    """The palette indices (H, W) of a colour-palette image file; None for any other file (a gray
    palette is read by its gray values, as a tool that saved a 0/255 mask with a palette meant)."""
    if not path.is_file() or file_suffix(path) in (*VOLUME_SUFFIXES, *_TIFF_SUFFIXES):
        return None
    try:
        with Image.open(path) as image:
            if image.mode != "P":
                return None
            palette = np.asarray(image.getpalette() or [0, 0, 0]).reshape(-1, 3)
            return None if np.all(palette == palette[:, :1]) else np.asarray(image)
    except Exception:  # not an image Pillow reads: _read_pixels says why
        return None


def _read_pixels(path: Path) -> np.ndarray:
    """Raw pixel values (H, W) or (H, W, 3) of a 2D image file."""
    _check_is_file(path)
    suffix = file_suffix(path)
    if suffix in VOLUME_SUFFIXES:
        raise DataError("is a volume, not a 2D image; keep volumes in a folder of volumes only", path)
    if suffix not in IMAGE_SUFFIXES:
        raise DataError(f"unsupported image type {suffix!r}; use one of {', '.join(IMAGE_SUFFIXES)}", path)
    if suffix in _TIFF_SUFFIXES:
        pixels = _read_tiff(path)
        if pixels is not None:
            return pixels
    try:
        with Image.open(path) as image:
            return _pillow_pixels(image)
    except Exception as error:  # Pillow raises OSError, SyntaxError, ValueError, zlib errors...
        raise DataError(
            f"cannot read image: {error}; check the file is a valid PNG/JPEG/BMP/TIFF/GIF image", path
        ) from error


def _pillow_pixels(image: Image.Image) -> np.ndarray:
    """Gray or RGB pixels of a Pillow image: alpha dropped, palettes resolved to their colours."""
    if image.mode in ("P", "PA"):
        palette = np.asarray(image.getpalette() or [0, 0, 0]).reshape(-1, 3)
        gray_palette = bool(np.all(palette == palette[:, :1]))
        image = image.convert("L" if gray_palette else "RGB")
    elif image.mode in ("1", "LA", "La"):
        image = image.convert("L")
    elif image.mode not in (*_GRAY_MODES, "RGB"):
        image = image.convert("RGB")
    return np.asarray(image)


def _read_tiff(path: Path) -> np.ndarray | None:
    """Full-precision TIFF pixels (Pillow truncates 16-bit colour), or None to fall back to Pillow.

    Palette TIFFs and files tifffile cannot decode (e.g. JPEG-compressed without imagecodecs)
    go to Pillow.
    """
    try:
        with tifffile.TiffFile(path) as tiff:
            page = tiff.pages.first
            if page.photometric == tifffile.PHOTOMETRIC.PALETTE:
                return None
            pixels, axes = page.asarray(), page.axes
    except Exception:  # Pillow gets a second try and reports the error if it fails too
        return None
    if "S" in axes:  # samples (channels) may be stored planar: move them last
        pixels = np.moveaxis(pixels, axes.index("S"), -1)
    if pixels.ndim == 3:
        pixels = pixels[..., 0] if pixels.shape[-1] <= 2 else pixels[..., :3]
    if pixels.ndim != 2 and pixels.ndim != 3:
        raise DataError(f"unsupported TIFF layout (axes {axes}, shape {pixels.shape}); save it as one 2D image", path)
    return pixels


def _nifti_data(volume: nib.Nifti1Image, path: Path, dtype: type | None) -> np.ndarray:
    """The voxels of an opened NIfTI, as ``dtype`` (None keeps the stored type)."""
    try:
        if dtype is None:
            return np.asanyarray(volume.dataobj)
        return volume.get_fdata(dtype=dtype)
    except Exception as error:  # truncated gzip, bad header sizes...
        raise DataError(f"cannot read volume: {error}; {_NIFTI_FIX}", path) from error


def _as_labels(values: np.ndarray, path: Path, stored: bool) -> np.ndarray:
    """Label map from stored mask values: {0, 255} -> {0, 1} (kept if ``stored``), 0..31 kept, larger
    values kept where they are visible labels, anything else refused."""
    if values.dtype == bool:
        values = values.astype(np.uint8)
    distinct = np.unique(values)
    integral = bool(np.all(np.isfinite(distinct)) and np.all(distinct == np.round(distinct)))
    if integral and set(distinct.tolist()) <= {0, 255}:
        return values.astype(np.int64) if stored else (values == 255).astype(np.int64)
    if integral and distinct.min() >= 0 and (distinct.max() <= PLAIN_LABELS or _visible_labels(values, distinct)):
        return values.astype(np.int64)
    shown = ", ".join(f"{value:g}" for value in distinct[:8].tolist()) + (", ..." if len(distinct) > 8 else "")
    raise DataError(f"mask values are not labels ({len(distinct)} distinct: {shown}); {_MASK_FIX}", path)


def _visible_labels(values: np.ndarray, distinct: np.ndarray) -> bool:
    """Whether values above :data:`PLAIN_LABELS` are label values drawn to be seen (0/128/255): at
    most 16 of them in 0..255, at least 16 apart, and each filling a region, some pixel whose
    neighbours along every axis share its value. Antialiased or compressed binary masks fail: their
    in-between values are many, close together, and lie on edges."""
    if len(distinct) > _VISIBLE_MAX_VALUES or distinct.max() > MAX_LABEL or np.diff(distinct).min() < _VISIBLE_MIN_GAP:
        return False
    return _fill_regions(values, distinct)


def _fill_regions(values: np.ndarray, distinct: np.ndarray) -> bool:
    """Whether each of the ``distinct`` values has a pixel whose neighbours along every axis share it."""
    inner = tuple(slice(1, -1) for _ in range(values.ndim))
    centre = values[inner]
    uniform = np.ones(centre.shape, dtype=bool)
    for axis in range(values.ndim):
        for step in (-1, 1):
            shifted = tuple(slice(1 + step, values.shape[a] - 1 + step) if a == axis else slice(1, -1)
                            for a in range(values.ndim))
            uniform &= values[shifted] == centre
    return bool(np.array_equal(np.unique(centre[uniform]), distinct))


def _checked_labels(labels: np.ndarray, ndim: int, colour: bool = False) -> np.ndarray:
    labels = np.asarray(labels)
    if labels.ndim != ndim:
        raise ValueError(f"labels must have {ndim} dimensions, got shape {labels.shape}")
    largest = COLOUR_LABEL + 0xFFFFFF if colour else MAX_LABEL
    if labels.size and (labels.min() < 0 or labels.max() > largest):
        raise ValueError(f"labels must lie in 0..{largest}, got {labels.min()}..{labels.max()}")
    return labels
