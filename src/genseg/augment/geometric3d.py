"""Geometric augmentation of volumes: the mask augmentation T in 3D, one affine warp per sample.

The 2D ranges (:class:`~genseg.augment.geometric.GeometricRanges`) carry over axis by axis: a flip
of the last axis (the 2D horizontal flip of each slice), padding per side and resize back, a scale
and a shift per axis, and a rotation about each of the three axes drawn from the 2D rotation
range (nnU-Net rotates volumes about all three axes as well). Shear is not drawn in 3D. Label
maps are warped as one-hot channels and relabelled by the argmax, as in 2D.

Voxel coordinates are (x, y, z) = (width, height, depth) index, voxel centres at 0..W-1, 0..H-1
and 0..D-1; a matrix maps input coordinates to output ones, as kornia's ``warp_affine3d`` takes.

Example:
    >>> g = torch.Generator().manual_seed(0)
    >>> labels = torch.zeros(2, 16, 16, 16, dtype=torch.long)
    >>> labels[:, 4:12, 4:12, 4:12] = 1
    >>> augment_labels_3d(labels, 2, sample_geometric_3d(2, g)).shape
    torch.Size([2, 16, 16, 16])
"""

from __future__ import annotations

from dataclasses import dataclass, fields

import torch
from kornia.geometry.transform import warp_affine3d

from genseg.augment.geometric import (
    GeometricRanges,
    _uniform,
    augment_labels,
    augment_pairs,
    sample_geometric,
    skip_affine,
    warp_labels,
)


@dataclass
class GeometricParams3D:
    """One set of geometric parameters per volume (B volumes).

    Args:
        flip: (B,) bool, mirror the last axis (x) first.
        pad: (B, 6) padding fractions of each side: x low, x high, y low, y high, z low, z high.
        scale: (B, 3) zoom factors along x, y and z.
        translate: (B, 3) shifts along x, y and z as fractions of the extent.
        rotate: (B, 3) degrees about the x, y and z axes, applied in that order; a positive angle
            about z turns x toward y (clockwise in a slice displayed with y down, as in 2D).
    """

    flip: torch.Tensor
    pad: torch.Tensor
    scale: torch.Tensor
    translate: torch.Tensor
    rotate: torch.Tensor

    def __post_init__(self) -> None:
        batch = self.flip.shape[0]
        expected = {"flip": (batch,), "pad": (batch, 6), "scale": (batch, 3), "translate": (batch, 3),
                    "rotate": (batch, 3)}
        for name, shape in expected.items():
            if tuple(getattr(self, name).shape) != shape:
                raise ValueError(f"GeometricParams3D.{name} must have shape {shape}, "
                                 f"got {tuple(getattr(self, name).shape)}")

    @classmethod
    def identity(cls, batch: int, device: torch.device | str | None = None) -> GeometricParams3D:
        """Parameters that leave every volume unchanged."""
        zeros = torch.zeros(batch, 3, device=device)
        return cls(flip=torch.zeros(batch, dtype=torch.bool, device=device), pad=torch.zeros(batch, 6, device=device),
                   scale=torch.ones(batch, 3, device=device), translate=zeros, rotate=zeros.clone())


def sample_geometric_3d(
    batch: int,
    generator: torch.Generator,
    ranges: GeometricRanges = GeometricRanges(),
    device: torch.device | str | None = None,
) -> GeometricParams3D:
    """Draw independent geometric parameters for each of ``batch`` volumes from the 2D ranges.

    Args:
        batch: number of volumes.
        generator: source of randomness; draws are made on its device.
        ranges: the preset's ranges (``shear`` is not used in 3D).
        device: device of the returned tensors; default the generator's.
    """
    device = generator.device if device is None else device
    params = GeometricParams3D(
        flip=_uniform(generator, (batch,), (0.0, 1.0)) < ranges.flip_probability,
        pad=_uniform(generator, (batch, 6), ranges.pad),
        scale=_uniform(generator, (batch, 3), ranges.scale),
        translate=_uniform(generator, (batch, 3), ranges.translate),
        rotate=_uniform(generator, (batch, 3), ranges.rotate),
    )
    if ranges.probability < 1.0:
        skip_affine(params, GeometricParams3D.identity(batch, device=generator.device), generator, ranges.probability)
    return GeometricParams3D(**{item.name: getattr(params, item.name).to(device) for item in fields(params)})


def _diagonal(scale: torch.Tensor, shift: torch.Tensor) -> torch.Tensor:
    """(B, 4, 4) matrices of the per-axis maps x -> scale * x + shift."""
    matrices = torch.diag_embed(torch.cat([scale, torch.ones_like(scale[:, :1])], dim=1))
    matrices[:, :3, 3] = shift
    return matrices


def _rotation(degrees: torch.Tensor) -> torch.Tensor:
    """(B, 4, 4) rotations about x, then y, then z, by (B, 3) angles."""
    cos, sin = torch.cos(torch.deg2rad(degrees)), torch.sin(torch.deg2rad(degrees))
    batch = degrees.shape[0]
    result = torch.eye(4, device=degrees.device).repeat(batch, 1, 1)
    for axis, (a, b) in enumerate([(1, 2), (2, 0), (0, 1)]):  # the plane each axis turns
        turn = torch.eye(4, device=degrees.device).repeat(batch, 1, 1)
        turn[:, a, a], turn[:, a, b] = cos[:, axis], -sin[:, axis]
        turn[:, b, a], turn[:, b, b] = sin[:, axis], cos[:, axis]
        result = turn @ result
    return result


def affine_matrices_3d(params: GeometricParams3D, shape: tuple[int, int, int]) -> torch.Tensor:
    """Compose flip, pad-and-resize, scale, rotation and translation into one (B, 3, 4) matrix each.

    Args:
        params: the per-volume parameters.
        shape: the volume's (D, H, W).
    """
    depth, height, width = shape
    extent = torch.tensor([width - 1.0, height - 1.0, depth - 1.0], device=params.rotate.device)
    flipped = params.flip.float()
    sign = torch.stack([1.0 - 2.0 * flipped, torch.ones_like(flipped), torch.ones_like(flipped)], dim=1)
    flip = _diagonal(sign, torch.stack([flipped * extent[0], *[torch.zeros_like(flipped)] * 2], dim=1))
    pad = params.pad.float()
    before, after = pad[:, 0::2], pad[:, 1::2]
    shrink = 1.0 / (1.0 + before + after)
    pad_and_resize = _diagonal(shrink, before * extent * shrink)
    centre = (extent / 2).expand_as(params.scale)
    to_centre, from_centre = _diagonal(torch.ones_like(centre), -centre), _diagonal(torch.ones_like(centre), centre)
    scale_rotate = from_centre @ _rotation(params.rotate.float()) @ _diagonal(params.scale.float(),
                                                                              torch.zeros_like(centre)) @ to_centre
    translate = _diagonal(torch.ones_like(centre), params.translate.float() * extent)
    return (translate @ scale_rotate @ pad_and_resize @ flip)[:, :3]


def warp_3d(x: torch.Tensor, matrices: torch.Tensor, mode: str = "bilinear", padding: str = "zeros") -> torch.Tensor:
    """Warp (B, C, D, H, W) volumes by (B, 3, 4) forward matrices, trilinear, filling 0 outside
    (``padding`` ``"reflection"``: mirroring the volume)."""
    if x.ndim != 5 or matrices.shape != (x.shape[0], 3, 4):
        raise ValueError(f"expected x (B, C, D, H, W) and matrices (B, 3, 4), got {tuple(x.shape)} "
                         f"and {tuple(matrices.shape)}")
    return warp_affine3d(x, matrices.to(x), dsize=tuple(x.shape[-3:]), flags=mode, padding_mode=padding,
                         align_corners=True)


def augment_labels_3d(labels: torch.Tensor, num_classes: int, params: GeometricParams3D) -> torch.Tensor:
    """The mask augmentation T on (B, D, H, W) label maps."""
    matrices = affine_matrices_3d(params, tuple(labels.shape[-3:]))
    return warp_labels(labels, num_classes, lambda channels: warp_3d(channels, matrices))


def augment_pairs_3d(images: torch.Tensor, labels: torch.Tensor, num_classes: int, params: GeometricParams3D,
                     padding: str = "zeros") -> tuple[torch.Tensor, torch.Tensor]:
    """The same geometry on (B, C, D, H, W) images (trilinear) and their (B, D, H, W) label maps."""
    if images.shape[0] != labels.shape[0] or images.shape[-3:] != labels.shape[-3:]:
        raise ValueError(f"images {tuple(images.shape)} and labels {tuple(labels.shape)} must share "
                         "batch size and spatial shape")
    matrices = affine_matrices_3d(params, tuple(images.shape[-3:]))
    return (warp_3d(images, matrices, padding=padding),
            warp_labels(labels, num_classes, lambda channels: warp_3d(channels, matrices, padding=padding)))


def draw_and_augment_pairs(images: torch.Tensor, labels: torch.Tensor, num_classes: int, generator: torch.Generator,
                           ranges: GeometricRanges = GeometricRanges(), padding: str = "zeros"
                           ) -> tuple[torch.Tensor, torch.Tensor]:
    """Draw one geometry per sample from ``generator`` and apply it: images (B, C, H, W) in 2D,
    volumes (B, C, D, H, W) in 3D. With :func:`draw_and_augment_labels`, the one place the two are
    told apart."""
    if images.ndim == 5:
        return augment_pairs_3d(images, labels, num_classes,
                                sample_geometric_3d(images.shape[0], generator, ranges, device=images.device),
                                padding=padding)
    return augment_pairs(images, labels, num_classes,
                         sample_geometric(images.shape[0], generator, ranges, device=images.device), padding=padding)


def draw_and_augment_labels(labels: torch.Tensor, num_classes: int, generator: torch.Generator) -> torch.Tensor:
    """The mask augmentation T, one geometry per label map drawn from ``generator``: (B, H, W) maps
    in 2D, (B, D, H, W) in 3D."""
    if labels.ndim == 4:
        return augment_labels_3d(labels, num_classes, sample_geometric_3d(labels.shape[0], generator,
                                                                          device=labels.device))
    return augment_labels(labels, num_classes, sample_geometric(labels.shape[0], generator, device=labels.device))
