"""Geometric augmentation: the mask augmentation T of docs/method.md, one affine warp per sample.

Per sample: horizontal flip (p = 0.5), pad 0-10 % per side and resize back, scale 0.8-1.2 per
axis, translate +-10 %, rotate +-15 deg, shear +-8 deg; bilinear, fill 0. Label maps are warped
as one-hot channels and relabelled by the argmax over all classes, background included (for a
binary mask: threshold at 0.5), so warping neither grows nor shrinks a structure.

As in TorchIO, random and deterministic parts are apart: :func:`sample_geometric` draws a
:class:`GeometricParams` from a ``torch.Generator``; :func:`affine_matrices`, :func:`warp`,
:func:`augment_labels` and :func:`augment_pairs` are pure functions of the tensors and params.

Example:
    >>> g = torch.Generator().manual_seed(0)
    >>> labels = torch.zeros(2, 32, 32, dtype=torch.long)
    >>> labels[:, 8:24, 8:24] = 1
    >>> params = sample_geometric(2, g)
    >>> augment_labels(labels, num_classes=2, params=params).shape
    torch.Size([2, 32, 32])
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, fields
from typing import Any

import torch
import torch.nn.functional as F
from kornia.geometry.transform import get_affine_matrix2d, warp_affine


def _check_bounds(name: str, bounds: Sequence[float], low: float, high: float) -> None:
    """Raise ValueError unless ``bounds`` is a (min, max) pair inside [low, high]."""
    if len(bounds) != 2 or not low <= bounds[0] <= bounds[1] <= high:
        raise ValueError(
            f"{name} must be a (min, max) pair with {low} <= min <= max <= {high}, got {tuple(bounds)}"
        )


def _uniform(generator: torch.Generator, shape: tuple[int, ...], bounds: Sequence[float]) -> torch.Tensor:
    """Uniform draws in [bounds[0], bounds[1]) on the generator's device."""
    draws = torch.rand(shape, generator=generator, device=generator.device)
    return bounds[0] + (bounds[1] - bounds[0]) * draws


@dataclass(frozen=True)
class GeometricRanges:
    """Ranges the per-sample geometric parameters are drawn from (uniformly).

    Args:
        flip_probability: chance of a horizontal flip.
        pad: padding per side as a fraction of the image side (each side drawn on its own).
        scale: zoom factor per axis (x and y drawn on their own).
        translate: shift as a fraction of the image side, per axis.
        rotate: rotation in degrees; positive turns clockwise as displayed.
        shear: shear angles in degrees, along x and along y.
        probability: chance that a sample gets the affine part (pad, scale, translation,
            rotation, shear) at all; the flip is drawn on its own.
    """

    flip_probability: float = 0.5
    pad: tuple[float, float] = (0.0, 0.1)
    scale: tuple[float, float] = (0.8, 1.2)
    translate: tuple[float, float] = (-0.1, 0.1)
    rotate: tuple[float, float] = (-15.0, 15.0)
    shear: tuple[float, float] = (-8.0, 8.0)
    probability: float = 1.0

    def __post_init__(self) -> None:
        for name in ("flip_probability", "probability"):
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise ValueError(f"{name} must be in [0, 1], got {getattr(self, name)}")
        _check_bounds("pad", self.pad, 0.0, 1.0)
        _check_bounds("scale", self.scale, 1e-3, 1e3)
        _check_bounds("translate", self.translate, -1.0, 1.0)
        _check_bounds("rotate", self.rotate, -180.0, 180.0)
        # tan(shear) diverges at 90 deg; beyond 45 deg the image is mostly sheared away anyway.
        _check_bounds("shear", self.shear, -45.0, 45.0)


@dataclass
class GeometricParams:
    """One set of geometric parameters per sample (B samples).

    Args:
        flip: (B,) bool, flip horizontally first.
        pad: (B, 4) padding fractions of the image side: left, right, top, bottom.
        scale: (B, 2) zoom factors along x and y.
        translate: (B, 2) shifts along x and y as fractions of the image side.
        rotate: (B,) degrees, clockwise as displayed.
        shear: (B, 2) shear angles in degrees along x and y.
    """

    flip: torch.Tensor
    pad: torch.Tensor
    scale: torch.Tensor
    translate: torch.Tensor
    rotate: torch.Tensor
    shear: torch.Tensor

    def __post_init__(self) -> None:
        batch = self.flip.shape[0]
        expected = {"flip": (batch,), "pad": (batch, 4), "scale": (batch, 2),
                    "translate": (batch, 2), "rotate": (batch,), "shear": (batch, 2)}
        for name, shape in expected.items():
            if tuple(getattr(self, name).shape) != shape:
                raise ValueError(f"GeometricParams.{name} must have shape {shape}, "
                                 f"got {tuple(getattr(self, name).shape)}")

    @classmethod
    def identity(cls, batch: int, device: torch.device | str | None = None) -> GeometricParams:
        """Parameters that leave every sample unchanged (start from these to set one by hand)."""
        zeros = torch.zeros(batch, 2, device=device)
        return cls(flip=torch.zeros(batch, dtype=torch.bool, device=device),
                   pad=torch.zeros(batch, 4, device=device), scale=torch.ones(batch, 2, device=device),
                   translate=zeros, rotate=torch.zeros(batch, device=device), shear=zeros.clone())


def sample_geometric(
    batch: int,
    generator: torch.Generator,
    ranges: GeometricRanges = GeometricRanges(),
    device: torch.device | str | None = None,
) -> GeometricParams:
    """Draw independent geometric parameters for each of ``batch`` samples.

    Args:
        batch: number of samples.
        generator: source of randomness; the draws are made on its device, so a seeded CPU
            generator gives the same parameters whatever device the tensors live on.
        ranges: where each parameter is drawn from.
        device: device of the returned tensors; default the generator's.

    Returns:
        The sampled :class:`GeometricParams`.
    """
    device = generator.device if device is None else device
    params = GeometricParams(
        flip=_uniform(generator, (batch,), (0.0, 1.0)) < ranges.flip_probability,
        pad=_uniform(generator, (batch, 4), ranges.pad),
        scale=_uniform(generator, (batch, 2), ranges.scale),
        translate=_uniform(generator, (batch, 2), ranges.translate),
        rotate=_uniform(generator, (batch,), ranges.rotate),
        shear=_uniform(generator, (batch, 2), ranges.shear),
    )
    if ranges.probability < 1.0:  # drawn only then, so the default's random stream is unchanged
        skip_affine(params, GeometricParams.identity(batch, device=generator.device), generator, ranges.probability)
    return GeometricParams(**{name: value.to(device) for name, value in vars(params).items()})


def skip_affine(params: Any, identity: Any, generator: torch.Generator, probability: float) -> None:
    """Set each sample's affine parameters (all but the flip) to ``identity``'s with chance
    1 - ``probability``, in place: one draw per sample."""
    skipped = _uniform(generator, (params.flip.shape[0],), (0.0, 1.0)) >= probability
    for name in (item.name for item in fields(params) if item.name != "flip"):
        keep = skipped.view(-1, *[1] * (getattr(params, name).ndim - 1))
        setattr(params, name, torch.where(keep, getattr(identity, name), getattr(params, name)))


def _scale_shift(scale: torch.Tensor, shift: torch.Tensor) -> torch.Tensor:
    """(B, 3, 3) homogeneous matrices of the per-axis maps x -> scale * x + shift."""
    zeros, ones = torch.zeros_like(scale[:, 0]), torch.ones_like(scale[:, 0])
    rows = [scale[:, 0], zeros, shift[:, 0], zeros, scale[:, 1], shift[:, 1], zeros, zeros, ones]
    return torch.stack(rows, dim=-1).view(-1, 3, 3)


def affine_matrices(params: GeometricParams, height: int, width: int) -> torch.Tensor:
    """Compose flip, pad-and-resize, scale, rotation, shear and translation into one matrix each.

    Matrices map input pixel coordinates (x right, y down, pixel centres at 0..W-1 and 0..H-1)
    to output ones, as :func:`kornia.geometry.transform.warp_affine` expects. One matrix per
    sample means one interpolation per warp, so the steps do not blur the image repeatedly.

    Args:
        params: the per-sample parameters.
        height: image height in pixels.
        width: image width in pixels.

    Returns:
        (B, 2, 3) forward affine matrices.
    """
    rotate = params.rotate.float()
    # With pixel centres at 0..W-1 (align_corners=True) the image spans W - 1 units per axis.
    extent = torch.tensor([width - 1.0, height - 1.0], device=rotate.device)
    flip_sign = 1.0 - 2.0 * params.flip.float()
    flip = _scale_shift(torch.stack([flip_sign, torch.ones_like(flip_sign)], dim=-1),
                        torch.stack([params.flip.float() * extent[0], torch.zeros_like(flip_sign)], dim=-1))
    # Padding then resizing back is a shrink of the image onto the canvas plus a shift by the
    # (shrunk) left and top padding.
    pad = params.pad.float()
    before, after = pad[:, [0, 2]], pad[:, [1, 3]]
    shrink = 1.0 / (1.0 + before + after)
    pad_and_resize = _scale_shift(shrink, before * extent * shrink)
    # kornia composes shear, then scale and rotation about the centre, then translation; it
    # takes the rotation clockwise as displayed and the shear in radians.
    centred = get_affine_matrix2d(
        translations=params.translate.float() * extent,
        center=(extent / 2).expand(rotate.shape[0], 2),
        scale=params.scale.float(),
        angle=rotate,
        sx=torch.deg2rad(params.shear[:, 0].float()),
        sy=torch.deg2rad(params.shear[:, 1].float()),
    )
    return (centred @ pad_and_resize @ flip)[:, :2]


def warp(x: torch.Tensor, matrices: torch.Tensor, mode: str = "bilinear", padding: str = "zeros") -> torch.Tensor:
    """Warp a batch by per-sample forward affine matrices, filling with 0 outside the input.

    kornia's ``warp_affine`` is used rather than ``affine_grid``/``grid_sample`` directly: it takes
    matrices in pixel coordinates (readable composition above) and does the normalization and
    inversion itself; it is differentiable with respect to ``x`` and ``matrices``.

    Args:
        x: (B, C, H, W) floating tensor.
        matrices: (B, 2, 3) from :func:`affine_matrices`.
        mode: ``"bilinear"`` or ``"nearest"``.
        padding: ``"zeros"`` (docs/method.md's fill 0) or ``"reflection"`` (no black bands).

    Returns:
        The warped (B, C, H, W) tensor.
    """
    if x.ndim != 4 or matrices.shape != (x.shape[0], 2, 3):
        raise ValueError(f"expected x (B, C, H, W) and matrices (B, 2, 3), got {tuple(x.shape)} "
                         f"and {tuple(matrices.shape)}")
    return warp_affine(x, matrices.to(x), dsize=(x.shape[-2], x.shape[-1]), mode=mode,
                       padding_mode=padding, align_corners=True)


def warp_labels(labels: torch.Tensor, num_classes: int, warp_channels: Callable[[torch.Tensor], torch.Tensor]
                ) -> torch.Tensor:
    """Warp one-hot foreground channels and relabel: see :func:`augment_labels`.

    Args:
        labels: (B, H, W) or, for volumes, (B, D, H, W) integer label map.
        num_classes: classes including background.
        warp_channels: warps a (B, K - 1, ...) float tensor bilinearly, filling 0 outside.
    """
    if labels.ndim not in (3, 4) or labels.dtype.is_floating_point:
        raise ValueError(f"labels must be an integer (B, H, W) or (B, D, H, W) label map, got {labels.dtype} "
                         f"{tuple(labels.shape)}")
    if num_classes < 2:
        raise ValueError(f"num_classes counts the background too and must be >= 2, got {num_classes}")
    if labels.numel() and (labels.min() < 0 or labels.max() >= num_classes):
        raise ValueError(f"label values must be in 0..{num_classes - 1}, got "
                         f"{labels.min().item()}..{labels.max().item()}; check num_classes")
    foreground = warp_channels(F.one_hot(labels.long(), num_classes)[..., 1:].movedim(-1, 1).float())
    # Bilinear weights sum to one inside the image, so the background's share is what the
    # foreground channels leave; outside the image (zero fill) that is all of it. docs/method.md's
    # threshold of 0.1 grew every warped lung by about 4 % and taught the segmenter to over-segment.
    background = 1.0 - foreground.sum(dim=1, keepdim=True)
    return torch.cat([background, foreground], dim=1).argmax(dim=1)


def _warp_labels(
    labels: torch.Tensor, num_classes: int, matrices: torch.Tensor, padding: str = "zeros"
) -> torch.Tensor:
    if labels.ndim != 3:
        raise ValueError(f"labels must be an integer (B, H, W) label map, got {labels.dtype} {tuple(labels.shape)}")
    return warp_labels(labels, num_classes, lambda channels: warp(channels, matrices, padding=padding))


def augment_labels(labels: torch.Tensor, num_classes: int, params: GeometricParams) -> torch.Tensor:
    """Apply the geometry to label maps: the mask augmentation T.

    Each class is warped bilinearly as its own one-hot channel and a pixel takes the class with
    the largest warped value, background included: for a binary mask a threshold at 0.5, so the
    warped structure keeps its area (docs/method.md's threshold at 0.1 enlarged it); for several
    classes it keeps the label set.

    Args:
        labels: (B, H, W) integer label map with values 0..num_classes-1.
        num_classes: number of classes including background.
        params: the per-sample parameters.

    Returns:
        (B, H, W) int64 label map.
    """
    return _warp_labels(labels, num_classes, affine_matrices(params, *labels.shape[-2:]))


def augment_pairs(
    images: torch.Tensor, labels: torch.Tensor, num_classes: int, params: GeometricParams, padding: str = "zeros"
) -> tuple[torch.Tensor, torch.Tensor]:
    """Apply the same geometry to images (bilinear) and their label maps (as :func:`augment_labels`).

    Args:
        images: (B, C, H, W) float images.
        labels: (B, H, W) integer label maps.
        num_classes: number of classes including background.
        params: the per-sample parameters.
        padding: ``"zeros"`` or ``"reflection"``; the generator trains on reflected pairs so it
            does not learn to draw the black bands of zero padding (docs/method.md).

    Returns:
        The warped images and label maps.
    """
    if images.shape[0] != labels.shape[0] or images.shape[-2:] != labels.shape[-2:]:
        raise ValueError(f"images {tuple(images.shape)} and labels {tuple(labels.shape)} must share "
                         "batch size, height and width")
    matrices = affine_matrices(params, *images.shape[-2:])
    return warp(images, matrices, padding=padding), _warp_labels(labels, num_classes, matrices, padding)


class RandomGeometric:
    """Draw fresh per-sample parameters on every call and apply them.

    Args:
        generator: source of randomness (seed it for reproducible runs).
        ranges: where the parameters are drawn from.

    Example:
        >>> transform = RandomGeometric(torch.Generator().manual_seed(0))
        >>> transform(torch.zeros(4, 32, 32, dtype=torch.long), num_classes=2).shape
        torch.Size([4, 32, 32])
    """

    def __init__(self, generator: torch.Generator, ranges: GeometricRanges = GeometricRanges()) -> None:
        self.generator = generator
        self.ranges = ranges

    def sample(self, batch: int, device: torch.device | str | None = None) -> GeometricParams:
        """Parameters for ``batch`` samples, on ``device``."""
        return sample_geometric(batch, self.generator, self.ranges, device)

    def __call__(self, labels: torch.Tensor, num_classes: int) -> torch.Tensor:
        """Augment label maps (the mask augmentation T)."""
        return augment_labels(labels, num_classes, self.sample(labels.shape[0], labels.device))

    def pairs(
        self, images: torch.Tensor, labels: torch.Tensor, num_classes: int
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Augment image-label pairs with the same geometry."""
        return augment_pairs(images, labels, num_classes, self.sample(images.shape[0], images.device))
