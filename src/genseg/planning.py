"""The plan stage, as nnU-Net's (fingerprint -> plan -> trainer): a run's plan, decided once.

:class:`RunPlan` is everything a run was planned to be: its budget's training and validation cases,
its label values, its image size and generator kind, and the data set's :class:`Plan` they were
decided from. It is written to the run's ``plan.json`` when the run starts (or by the benchmark
before it), and read back, never decided again, by a resumed run and by the benchmark
(:func:`genseg.run_data.plan_run` makes one).

The data set's plan comes from its fingerprint: the working resolution and the synthesis.

The fingerprint is measured on the budget's labeled cases only (nothing else with a label is
read): the median image side, how wide the labeled structures are, how much of the image they
cover, in how many pieces, and how much their position varies.

Resolution. A structure narrower than
:data:`MIN_WIDTH_PX` pixels after resizing does not survive it (DRIVE's vessels at 128 px), so the
plan picks the smallest side, in steps of 32, that keeps the narrow structures of the budget at
least that wide, never above the images' own side nor above ``max_size`` (what the hardware
allows: an iteration costs about (side / 128)^2 times one at 128 px).

Synthesis (:func:`plan_synthesis`). Small, sparse targets (lesions: ulcers, tumours, nodules),
which cover less than :data:`LESION_FRACTION` of the image in at most :data:`LESION_COMPONENTS`
pieces, get the compositing generator, which pastes their real texture; a generator trained on a
few pairs cannot draw them. Anatomy that covers more of the image or branches into many pieces
(lungs, hippocampus slices, vessels) keeps pix2pix, which draws a coherent whole. Measured on the
benchmark's budgets: FUSeg wounds cover 0.3-0.9 % of the image in 1 piece, JSRT lungs 27-35 % in 2,
hippocampus slices 9-10 % in 1, DRIVE vessels 8-9 % in 350-650.

Example:
    >>> mask = np.zeros((256, 256), dtype=np.int64)
    >>> mask[100:108, 20:236] = 1  # a strip 8 px wide
    >>> structure_width(mask)
    8.0
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
from scipy import ndimage

from genseg.config import AUTO
from genseg.data import Sample, voxel_sides
from genseg.errors import ConfigError

MIN_WIDTH_PX = 4.0
"""Narrowest structure width, in pixels after resizing, the plan keeps."""
BASE_SIZE = 128
"""The side every cost is counted against, and the floor of a plan (unless the images are smaller)."""
WIDTH_PERCENTILE = 10
"""The budget's cases are ranked by structure width; the plan serves this percentile."""
LESION_FRACTION = 0.03
"""Targets covering less of the image than this (median over labeled images) are lesion-like."""
LESION_COMPONENTS = 5
"""... and in at most this many connected pieces (median): vessels and other trees are not."""
ANISOTROPY_LIMIT = 3.0
"""Volumes whose coarsest voxel side is at most this many times their finest (median over the budget)
train in 3D when the plan chooses; more anisotropic ones (thick slices) train on slices, as nnU-Net's
planner treats spacing ratios above 3 as anisotropic."""
BATCH_SIZE = {2: 4, 3: 2}
"""Real pairs per step by dims, where the config leaves it to the plan: 4 images, or 2 volumes, the
batch nnU-Net's planner gives 3d_fullres at these patch sizes (and the one the 3D rows measured)."""
MAX_PATCH_VOXELS = 96**3
"""The largest 3D patch a plan chooses: a 3D U-Net step on it, 2 patches a batch, takes seconds on
one CPU core (the hippocampus's 48 x 64 x 48 takes about 3 s); set ``data.patch`` for more."""


@dataclass(frozen=True)
class Fingerprint:
    """What the plan is decided from, measured on the budget's labeled cases.

    Args:
        cases: labeled cases measured.
        native_side: median of the images' longer side, in pixels.
        structure_width: the :data:`WIDTH_PERCENTILE`-th percentile over cases of each case's
            median structure width (2 x area / boundary length, in native pixels).
        channels: image channels.
        foreground_fraction: median over labeled images (slices) of the share of pixels in a structure.
        components: median over those images of the structures' connected pieces.
        position_spread: spread of the structures' centres over those images (root of the summed
            variances of the centre's row and column, in image sides).
    """

    cases: int
    native_side: float
    structure_width: float
    channels: int
    foreground_fraction: float = math.nan
    components: float = math.nan
    position_spread: float = math.nan


@dataclass(frozen=True)
class Plan:
    """The working resolution and the synthesis chosen for a data set, and what an iteration costs.

    Args:
        size: square side images are resized to.
        fingerprint: what it was decided from.
        max_size: the cap it was decided under.
        width_at_size: the fingerprint's structure width after resizing to ``size``.
        relative_cost: time of an iteration relative to one at 128 px, (size / 128)^2.
        synthesis: the generator kind of the generative methods (:func:`plan_synthesis`).
    """

    size: int
    fingerprint: Fingerprint
    max_size: int
    width_at_size: float
    relative_cost: float
    synthesis: str = "pix2pix"

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def describe(self) -> str:
        """One line for logs and the CLI."""
        f = self.fingerprint
        return (f"plan: {self.size} px (images {f.native_side:.0f} px, narrow structures {f.structure_width:.1f} px "
                f"wide, {self.width_at_size:.1f} px at {self.size}; cap {self.max_size}); an iteration costs "
                f"{self.relative_cost:.1f}x one at {BASE_SIZE} px; synthesis {self.synthesis} (structures cover "
                f"{100 * f.foreground_fraction:.1f} % of an image in {f.components:.0f} piece(s), their centres "
                f"spread {f.position_spread:.2f} of the side)")


@dataclass(frozen=True)
class RunPlan:
    """What a run is planned to be: what it trains on, at which size, with which generator.

    Args:
        train_ids: the budget's training cases.
        val_ids: the budget's validation cases.
        label_values: the mask values, in class order (class 0 is the background).
        size: the run's image side; the data set's plan's unless the config set one.
        generator: the run's generator kind; the plan's synthesis where the config left it to the
            plan, and what the config names otherwise (also for a method that trains none).
        data_set: the data set's plan, from the budget's fingerprint.
        decided: the settings the plan decided (``data.size``, ``data.dims``, ``data.patch``, ``data.spacing``,
            ``train.batch_size``, ``generator.name``); the config set the others.
        dims: 2 (images or slices) or 3 (whole volumes): the config's, or :func:`plan_dims`'s where it left it.
        patch: in 3D, the (D, H, W) every volume is padded to (:func:`plan_patch`, unless the config set one).
        volume_extent: in 3D, the budget volumes' largest side per axis at ``spacing``; where it exceeds the
            patch, training crops patches and inference slides a window.
        spacing: in 3D, the voxel size in mm every volume is resampled to (:func:`plan_spacing`, unless
            the config set one).
        anisotropy: the budget volumes' median ratio of coarsest to finest voxel side (None for images).
        batch_size: real pairs per step: the config's, or :data:`BATCH_SIZE`'s for ``dims`` where it left it.
        axis: the axis volumes trained in 2D are sliced along: the config's, or :func:`plan_axis`'s
            where it left it (0 for images, which have none).
    """

    train_ids: tuple[str, ...]
    val_ids: tuple[str, ...]
    label_values: tuple[int, ...]
    size: int
    generator: str
    data_set: Plan
    decided: tuple[str, ...] = ()
    dims: int = 2
    patch: tuple[int, int, int] | None = None
    anisotropy: float | None = None
    spacing: tuple[float, float, float] | None = None
    batch_size: int = BATCH_SIZE[2]
    volume_extent: tuple[int, int, int] | None = None
    axis: int = 0

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> RunPlan:
        """The plan ``to_dict`` wrote.

        Raises:
            KeyError, TypeError: the values are not such a plan (a ``plan.json`` from before run
                plans held only the data set's plan).
        """
        data_set = dict(values["data_set"])
        data_set["fingerprint"] = Fingerprint(**data_set["fingerprint"])
        return cls(train_ids=tuple(values["train_ids"]), val_ids=tuple(values["val_ids"]),
                   label_values=tuple(int(v) for v in values["label_values"]), size=int(values["size"]),
                   generator=str(values["generator"]), data_set=Plan(**data_set),
                   decided=tuple(values.get("decided", ())), dims=int(values.get("dims", 2)),
                   patch=_sides(values.get("patch")),
                   anisotropy=values.get("anisotropy"),
                   spacing=tuple(float(side) for side in values["spacing"]) if values.get("spacing") else None,
                   batch_size=int(values.get("batch_size", BATCH_SIZE[2])),
                   volume_extent=_sides(values.get("volume_extent")),
                   axis=int(values.get("axis", 0)))  # plans from before the axis was planned sliced along 0

    def describe(self) -> str:
        """Lines for logs and the CLI: the run's choices, then the data set's plan."""
        generator = f", generator {self.generator}" if self.generator != AUTO else ""  # AUTO: the method trains none
        shape = f"3D, {volume_layout(self.patch, self.spacing, self.volume_extent)}" if self.dims == 3 else (
            f"{self.size} px")
        if self.anisotropy is not None:
            shape += (f" (voxel spacing anisotropy {self.anisotropy:.1f}, "
                      f"{'at most' if self.anisotropy <= ANISOTROPY_LIMIT else 'above'} {ANISOTROPY_LIMIT:g})")
            if self.dims == 2:
                shape += f", slices along axis {self.axis}"
        chosen = (f"run: {len(self.train_ids)} train + {len(self.val_ids)} val cases, labels "
                  f"{list(self.label_values)}, {shape}, batch {self.batch_size}{generator}"
                  + (f" ({', '.join(self.decided)} from the plan)" if self.decided else ""))
        return f"{chosen}\n{self.data_set.describe()}"


def volume_layout(patch: tuple[int, ...] | None, spacing: tuple[float, ...] | None,
                  extent: tuple[int, ...] | None = None) -> str:
    """How a 3D run's volumes meet its patch, in words: padded to it, or, where the budget's
    largest volume (``extent``) exceeds it, sampled in patches."""
    voxels = f"{'x'.join(map(str, patch or ()))} voxels"
    if spacing is not None:
        voxels += f" of {' x '.join(f'{side:g}' for side in spacing)} mm"
    if extent is None or patch is None or all(side <= limit for side, limit in zip(extent, patch)):
        return f"volumes padded to {voxels}"
    return f"patches of {voxels} cropped from volumes up to {'x'.join(map(str, extent))}, a third on foreground"


def _sides(values: list | None) -> tuple[int, int, int] | None:
    return tuple(int(side) for side in values) if values else None


def spacing_anisotropy(affines: list[np.ndarray]) -> float:
    """The median over volumes of the coarsest voxel side over the finest (1 for isotropic voxels)."""
    ratios = [float(sides.max() / max(sides.min(), 1e-12)) for sides in map(voxel_sides, affines)]
    return float(np.median(ratios))


def plan_spacing(affines: list[np.ndarray]) -> tuple[float, float, float]:
    """The voxel size 3D training resamples every volume to: the budget's median along each axis
    (nnU-Net's target for volumes that are not very anisotropic, the only ones the plan trains in 3D),
    rounded to a micrometre so that volumes already on that grid are left alone."""
    if not affines:
        raise ConfigError("a spacing needs the budget's volume geometries")
    median = np.median(np.stack([voxel_sides(affine) for affine in affines]), axis=0)
    return tuple(round(float(side), 3) for side in median)


def single_slice_axis(geometries: list[tuple[tuple[int, ...], np.ndarray]]) -> int | None:
    """The axis every volume of the budget is one voxel thick along (2D images stored as volumes), or None."""
    single = np.flatnonzero((np.array([shape for shape, _ in geometries]) == 1).all(axis=0))
    return int(single[0]) if single.size else None


def plan_axis(geometries: list[tuple[tuple[int, ...], np.ndarray]]) -> int:
    """The axis volumes trained in 2D are sliced along, from the budget's (shape, affine) pairs: the axis
    every volume is one voxel thick along (2D images stored as volumes); else, for volumes of spacing
    anisotropy above :data:`ANISOTROPY_LIMIT`, the axis of the coarsest median voxel side, so that each
    slice is one acquired image (nnU-Net's 2D configuration slices the same way); else 0.

    Example:
        >>> thick_z = np.diag([0.8, 0.8, 5.0, 1.0])
        >>> plan_axis([((512, 512, 30), thick_z)])
        2
    """
    if not geometries:
        raise ConfigError("a slicing axis needs the budget's volume geometries")
    single = single_slice_axis(geometries)
    if single is not None:
        return single
    affines = [affine for _, affine in geometries]
    if spacing_anisotropy(affines) > ANISOTROPY_LIMIT:
        return int(np.argmax(np.median(np.stack([voxel_sides(affine) for affine in affines]), axis=0)))
    return 0


def plan_dims(anisotropy: float | None, method_trains_volumes: bool, single_slice: bool = False) -> int:
    """3 for volumes of at most :data:`ANISOTROPY_LIMIT` spacing anisotropy whose method trains on
    whole volumes; 2 for images (``anisotropy`` None), thick-sliced volumes, 2D images stored as
    volumes (``single_slice``: one voxel thick along an axis), and other methods."""
    if anisotropy is None or not method_trains_volumes or single_slice:
        return 2
    return 3 if anisotropy <= ANISOTROPY_LIMIT else 2


def plan_patch(shapes: list[tuple[int, int, int]], multiple: int = 16, least: int = 32,
               max_voxels: int = MAX_PATCH_VOXELS) -> tuple[int, int, int]:
    """The 3D training patch: the largest budget volume's side per axis, rounded up to ``multiple``
    (the U-Net's four poolings) and at least ``least``, so every volume fits whole; where that
    exceeds ``max_voxels``, its longest side shrinks in steps of ``multiple`` until it does not
    (training then crops patches, a third of them on foreground, and inference slides a window).

    The shapes are the volumes' at the run's spacing (:func:`genseg.data.resample.resampled_shape`).
    """
    if not shapes:
        raise ConfigError("a patch needs the budget's volume shapes")
    patch = [max(least, multiple * math.ceil(max(axis) / multiple)) for axis in zip(*shapes)]
    while math.prod(patch) > max_voxels and max(patch) > least:
        longest = patch.index(max(patch))
        patch[longest] -= multiple
    return tuple(patch)


def structure_width(mask: np.ndarray) -> float:
    """Median width of the labeled structures of a 2D label map: 2 x area / boundary length, per class.

    A strip w pixels wide gives w; a disc of diameter d gives d / 2. NaN for an empty map.
    """
    widths = []
    for label in np.unique(mask[mask > 0]):
        region = mask == label
        boundary = region & ~ndimage.binary_erosion(region, border_value=1)
        widths.append(2.0 * region.sum() / max(1, boundary.sum()))
    return float(np.median(widths)) if widths else math.nan


def fingerprint(samples: Iterable[Sample]) -> Fingerprint:
    """Measure the budget's labeled samples (2D images, or the slices of volumes), in one pass, so
    that they can be read one case at a time (:func:`genseg.data.iter_samples`)."""
    per_case: dict[str, list[float]] = {}
    sides, fractions, pieces, centres, channels = [], [], [], [], None
    for sample in samples:
        if sample.mask is None:
            raise ConfigError("a fingerprint needs labeled samples")
        widths, width = per_case.setdefault(sample.case_id, []), structure_width(sample.mask)
        if not math.isnan(width):
            widths.append(width)
        sides.append(max(sample.image.shape[-2:]))
        channels = int(sample.image.shape[0])
        foreground = sample.mask > 0
        if foreground.any():
            fractions.append(float(foreground.mean()))
            pieces.append(ndimage.label(foreground)[1])
            centres.append(np.array(ndimage.center_of_mass(foreground)) / np.array(foreground.shape))
    if channels is None:
        raise ConfigError("a fingerprint needs labeled samples")
    case_widths = [float(np.median(widths)) for widths in per_case.values() if widths]
    return Fingerprint(
        cases=len(per_case),
        native_side=float(np.median(sides)),
        structure_width=float(np.percentile(case_widths, WIDTH_PERCENTILE)) if case_widths else math.nan,
        channels=channels,
        foreground_fraction=float(np.median(fractions)) if fractions else math.nan,
        components=float(np.median(pieces)) if pieces else math.nan,
        position_spread=float(np.sqrt(np.var(centres, axis=0).sum())) if centres else math.nan,
    )


def plan_synthesis(fp: Fingerprint) -> str:
    """``composite`` for lesion-like targets (small and few: see the module docstring), else ``pix2pix``."""
    lesion_like = fp.foreground_fraction < LESION_FRACTION and fp.components <= LESION_COMPONENTS
    return "composite" if lesion_like else "pix2pix"  # NaN (no foreground) compares False: pix2pix


def make_plan(fp: Fingerprint, max_size: int = 512, multiple: int = 32) -> Plan:
    """The plan of a fingerprint: its synthesis (:func:`plan_synthesis`) and the smallest side (a
    multiple of ``multiple``) keeping narrow structures :data:`MIN_WIDTH_PX` wide.

    The side is never above the images' own (rounded up) nor ``max_size``, and never below 128 px
    unless the images are smaller.
    """
    if max_size < multiple or max_size % multiple:
        raise ConfigError(f"max_size must be a multiple of {multiple}, got {max_size}")
    native = multiple * math.ceil(fp.native_side / multiple)
    upper = min(native, max_size)
    lower = min(BASE_SIZE, upper)
    if math.isnan(fp.structure_width):  # no foreground in the budget: nothing to keep
        needed = lower
    else:
        needed = multiple * math.ceil(fp.native_side * MIN_WIDTH_PX / fp.structure_width / multiple)
    size = int(min(max(needed, lower), upper))
    width = fp.structure_width * size / fp.native_side
    return Plan(size=size, fingerprint=fp, max_size=max_size, width_at_size=round(width, 2),
                relative_cost=round((size / BASE_SIZE) ** 2, 2), synthesis=plan_synthesis(fp))
