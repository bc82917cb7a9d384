"""Augmentation: geometric (the mask augmentation T of docs/method.md) and intensity jitter.

Each kind has a ranges dataclass, a sampled parameter set (a dataclass of per-sample tensors
drawn from a ``torch.Generator``) and pure apply functions, plus a small ``Random*`` callable that
samples and applies in one go. :data:`genseg.plugins.AUGMENTATIONS` names the presets of the ``augment`` recipe
(:mod:`genseg.augment.presets`); the rest loads on first use.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

from genseg.plugins import AUGMENTATIONS

if TYPE_CHECKING:
    from genseg.augment.geometric import GeometricRanges
    from genseg.augment.intensity import IntensityRanges

_EXPORTS = {
    "genseg.augment.geometric": ("GeometricParams", "GeometricRanges", "RandomGeometric", "affine_matrices",
                                 "augment_labels", "augment_pairs", "sample_geometric", "warp"),
    "genseg.augment.geometric3d": ("GeometricParams3D", "augment_labels_3d", "augment_pairs_3d",
                                   "draw_and_augment_labels", "draw_and_augment_pairs", "sample_geometric_3d"),
    "genseg.augment.intensity": ("IntensityParams", "IntensityRanges", "RandomIntensity", "apply_intensity",
                                 "sample_intensity"),
}


def augmentation_ranges(name: str) -> tuple[GeometricRanges, IntensityRanges]:
    """The (geometric, intensity) ranges of preset ``name``.

    Raises:
        ValueError: an unknown preset (the registered ones and the closest).
    """
    return AUGMENTATIONS.load(name)


def __getattr__(name: str) -> Any:
    for module, names in _EXPORTS.items():
        if name in names:
            return getattr(import_module(module), name)
    raise AttributeError(f"module 'genseg.augment' has no attribute {name!r}")


__all__ = ["augmentation_ranges", *(name for names in _EXPORTS.values() for name in names)]
