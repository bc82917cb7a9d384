"""MetaImage (``.mha``/``.mhd``) and NRRD (``.nrrd``/``.nhdr``) volumes, through SimpleITK.

These are the formats of grand-challenge.org and 3D Slicer; nnU-Net reads them with SimpleITK too.
SimpleITK is an optional dependency (``pip install 'genseg[itk]'``), imported only when such a file
is met. Arrays and affines follow :mod:`genseg.data.io`'s NIfTI convention, so the rest of the
package never sees the difference:

- ITK's array is ``(Z, Y, X[, C])``; here it is transposed to ``(X, Y, Z[, C])``, the voxel index
  order of the geometry;
- ITK's geometry (origin, spacing, direction) is in LPS; the 4x4 affine is in RAS, as NIfTI's:
  ``affine = diag(-1, -1, 1, 1) @ [[direction @ diag(spacing), origin], [0, 1]]``;
- a 2D image is one slice, ``(X, Y, 1[, C])``, as a 2D NIfTI image is.
"""

from __future__ import annotations

from pathlib import Path
from types import ModuleType

import numpy as np

from genseg.errors import DataError

ITK_SUFFIXES = (".mha", ".mhd", ".nrrd", ".nhdr")
_LPS_TO_RAS = np.diag([-1.0, -1.0, 1.0])
_FIX = "check the file is a valid MetaImage (.mha/.mhd) or NRRD (.nrrd/.nhdr) volume"


def itk_header(path: Path) -> tuple[tuple[int, ...], np.ndarray]:
    """(shape ``(X, Y, Z[, C])``, 4x4 RAS affine) of an ITK volume (or 2D image), from its header only."""
    sitk = _simpleitk(path)
    reader = sitk.ImageFileReader()
    reader.SetFileName(str(path))
    try:
        reader.ReadImageInformation()
    except RuntimeError as error:  # SimpleITK raises RuntimeError with ITK's whole trace
        raise DataError(f"cannot read volume: {_itk_message(error)}; {_FIX}", path) from error
    size = tuple(int(side) for side in reader.GetSize())
    _check_dimension(len(size), path)
    channels = reader.GetNumberOfComponents()
    spatial = size[:3] if len(size) > 2 else (*size, 1)
    shape = spatial + ((size[3],) if len(size) == 4 else (channels,) if channels > 1 else ())
    return shape, _affine(reader.GetSpacing(), reader.GetOrigin(), reader.GetDirection(), len(size))


def read_itk(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """The voxels ``(X, Y, Z[, C])`` in their stored type and the 4x4 RAS affine of an ITK volume.

    A 4D image's fourth axis and a vector image's components are both the trailing channel axis.
    """
    sitk = _simpleitk(path)
    try:
        image = sitk.ReadImage(str(path))
    except RuntimeError as error:
        raise DataError(f"cannot read volume: {_itk_message(error)}; {_FIX}", path) from error
    dimension = image.GetDimension()
    _check_dimension(dimension, path)
    array = sitk.GetArrayFromImage(image)  # (Z, Y, X[, C]) or, in 4D, (C, Z, Y, X); in 2D (Y, X[, C])
    if dimension == 4:
        array = np.moveaxis(array, 0, -1)
    elif dimension == 2:
        array = array[None]  # one slice
    order = (2, 1, 0, 3) if array.ndim == 4 else (2, 1, 0)
    return np.ascontiguousarray(np.transpose(array, order)), _affine(
        image.GetSpacing(), image.GetOrigin(), image.GetDirection(), dimension)


def write_itk(path: Path, array: np.ndarray, affine: np.ndarray) -> None:
    """Write ``(X, Y, Z)`` voxels, or ``(X, Y, Z, C)`` as a vector image, with a RAS affine's geometry
    (compressed). Write to a single-file name (``.mha``, ``.nrrd``): a header-and-data pair cannot
    be moved into place atomically."""
    sitk = _simpleitk(path)
    order = (2, 1, 0, 3) if array.ndim == 4 else (2, 1, 0)
    image = sitk.GetImageFromArray(np.ascontiguousarray(np.transpose(array, order)), isVector=array.ndim == 4)
    linear = _LPS_TO_RAS @ np.asarray(affine, dtype=np.float64)[:3, :3]
    spacing = np.linalg.norm(linear, axis=0)
    image.SetSpacing(spacing.tolist())
    image.SetDirection((linear / spacing).flatten().tolist())
    image.SetOrigin((_LPS_TO_RAS @ np.asarray(affine, dtype=np.float64)[:3, 3]).tolist())
    sitk.WriteImage(image, str(path), True)


def _affine(spacing: tuple[float, ...], origin: tuple[float, ...], direction: tuple[float, ...],
            dimension: int) -> np.ndarray:
    """The RAS affine of the first three axes of an ITK geometry (a 2D one's third axis: 1 mm, at 0)."""
    kept = min(dimension, 3)
    rotation, sides, place = np.eye(3), np.ones(3), np.zeros(3)
    rotation[:kept, :kept] = np.asarray(direction, dtype=np.float64).reshape(dimension, dimension)[:kept, :kept]
    sides[:kept] = np.asarray(spacing, dtype=np.float64)[:kept]
    place[:kept] = np.asarray(origin, dtype=np.float64)[:kept]
    affine = np.eye(4)
    affine[:3, :3] = _LPS_TO_RAS @ rotation @ np.diag(sides)
    affine[:3, 3] = _LPS_TO_RAS @ place
    return affine


def _check_dimension(dimension: int, path: Path) -> None:
    if dimension not in (2, 3, 4):
        raise DataError(f"a {dimension}D image in a volume format; volumes must be 3D (or 4D, channels last)", path)


def _simpleitk(path: Path) -> ModuleType:
    try:
        import SimpleITK
    except ImportError as error:
        raise DataError("reading and writing .mha/.mhd/.nrrd volumes needs SimpleITK: "
                        "pip install 'genseg[itk]' (or convert the volumes to NIfTI)", path) from error
    return SimpleITK


def _itk_message(error: Exception) -> str:
    lines = [line.strip() for line in str(error).splitlines() if line.strip()]
    return lines[-1] if lines else type(error).__name__
