"""What a loaded case looks like: the contract between the data readers and the rest."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np


@dataclass(frozen=True)
class Case:
    """One labeled (or unlabeled) unit of the data set: the unit that splits and budgets count.

    A 2D image file is one case; a 3D volume is one case that yields many 2D slices.

    Args:
        case_id: the file stem (2D) or volume name without extension (3D).
        image_path: the image file.
        mask_path: the label map file, or ``None`` for unlabeled images.
        roi_path: optional region-of-interest mask (e.g. DRIVE's field of view); metrics are
            computed inside it.
    """

    case_id: str
    image_path: Path
    mask_path: Path | None = None
    roi_path: Path | None = None


@dataclass
class Sample:
    """One 2D image (a picture, or one slice of a volume) or one whole volume, at its original resolution.

    Args:
        case_id: the case it belongs to (several slices share one volume's id).
        image: float32 array (C, H, W), or (C, D, H, W) for a whole volume, normalized to [0, 1].
        mask: int64 label map (H, W) or (D, H, W) with values 0..num_classes-1, or ``None``.
        roi: bool array of the mask's shape where metrics count, or ``None`` for everywhere.
        slice_index: index along the slicing axis for volume slices, else ``None``.
        spacing: the voxel size in mm along the three axes of the volume it is or comes from (the
            NIfTI header's); ``None`` for 2D pictures.
    """

    case_id: str
    image: np.ndarray
    mask: np.ndarray | None = None
    roi: np.ndarray | None = None
    slice_index: int | None = None
    spacing: tuple[float, float, float] | None = None

    @property
    def is_volume(self) -> bool:
        """Whether this is a whole volume (a 3D sample)."""
        return self.image.ndim == 4


@dataclass
class CaseIndex:
    """The cases found under a data folder, keyed and sorted by case id.

    Args:
        root: the data folder.
        layout: ``"folders"`` (images/ + masks/), ``"flat"`` (images beside their ``_mask`` files),
            ``"nnunet"`` (imagesTr/ + labelsTr/ + dataset.json) or ``"msd"`` (imagesTr/ + labelsTr/ volumes).
        cases: case id -> Case, sorted by id.
        is_volume: True when cases are 3D volumes sliced into 2D samples.
        labels: class name -> label value when the data set declares them (nnU-Net).
    """

    root: Path
    layout: str
    cases: dict[str, Case]
    is_volume: bool = False
    labels: dict[str, int] = field(default_factory=dict)

    @property
    def ids(self) -> list[str]:
        return list(self.cases)
