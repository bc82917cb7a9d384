"""Augmentation: geometric (the mask augmentation T of docs/method.md) and intensity jitter.

Each kind has a ranges dataclass, a sampled parameter set (a dataclass of per-sample tensors
drawn from a ``torch.Generator``) and pure apply functions, plus a small ``Random*`` callable that
samples and applies in one go.
"""

from __future__ import annotations

from genseg.augment.geometric import (
    GeometricParams,
    GeometricRanges,
    RandomGeometric,
    affine_matrices,
    augment_labels,
    augment_pairs,
    sample_geometric,
    warp,
)
from genseg.augment.intensity import (
    IntensityParams,
    IntensityRanges,
    RandomIntensity,
    apply_intensity,
    sample_intensity,
)
from genseg.augment.presets import AUGMENTATIONS, augmentation_ranges

__all__ = [
    "AUGMENTATIONS",
    "GeometricParams",
    "GeometricRanges",
    "IntensityParams",
    "IntensityRanges",
    "RandomGeometric",
    "RandomIntensity",
    "affine_matrices",
    "apply_intensity",
    "augment_labels",
    "augment_pairs",
    "augmentation_ranges",
    "sample_geometric",
    "sample_intensity",
    "warp",
]
