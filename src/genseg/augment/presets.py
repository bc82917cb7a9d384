"""The augmentation presets named in :data:`genseg.plugins.AUGMENTATIONS`: the ranges of the ``augment`` recipe.

``standard`` is docs/method.md's mask augmentation T with a mild intensity jitter, applied to every
sample. ``nnunet`` follows nnU-Net v2's default 2D training transforms as far as the two
families here can: rotation over the full circle and scaling 0.7-1.4 (nnU-Net draws each with
p = 0.2, so a sample is moved by either with p = 0.36; here both together with that chance), no
shear or padding, mirroring; contrast 0.75-1.25 and gamma 0.7-1.5 with noise, on about half of
the samples. nnU-Net's blur and low-resolution simulation have no counterpart here.
"""

from __future__ import annotations

from genseg.augment.geometric import GeometricRanges
from genseg.augment.intensity import IntensityRanges

STANDARD = (GeometricRanges(), IntensityRanges())

NNUNET = (
    GeometricRanges(pad=(0.0, 0.0), scale=(0.7, 1.4), translate=(0.0, 0.0), rotate=(-180.0, 180.0),
                    shear=(0.0, 0.0), probability=0.36),
    IntensityRanges(brightness=(-0.1, 0.1), contrast=(0.75, 1.25), gamma=(0.7, 1.5), noise_std=(0.0, 0.05),
                    probability=0.5),
)
