"""A run's training batches: the budget's pairs as the sampler picks them, plain or augmented.

Every draw (rows, augmentation parameters) comes from one seeded generator whose state is saved
with the run, so a resumed run draws the batches an uninterrupted one would.

Example:
    >>> batches = Batches.seeded(pairs, num_classes=2, seed=0, batch_size=4)  # doctest: +SKIP
    >>> images, masks = batches.augmented()  # doctest: +SKIP
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor

from genseg.augment import (
    GeometricRanges,
    IntensityRanges,
    apply_intensity,
    augmentation_ranges,
    draw_and_augment_pairs,
    sample_intensity,
)
from genseg.data import PairTensors
from genseg.generators.base import MaskToImage, SyntheticDraw
from genseg.sampling import BatchSampler, crop_patches


@dataclass
class Batches:
    """Batches of the budget's training pairs, and of the pool's unlabeled images.

    Args:
        train: the training pairs, on the device batches are wanted on.
        num_classes: label values incl. background.
        sampler: which rows make each batch (it draws from ``rng``).
        rng: the generator every draw comes from; the generator level and GenSeg's noise seeds
            draw from it too, so it is the run's one stream.
        geometric: the ranges of :meth:`augmented`'s geometric augmentation.
        intensity: the ranges of its intensity augmentation.
        unlabeled: images of the pool outside the budget (the semi-supervised method only).
        synthetic: pairs per :meth:`synthetic_draw`; None: one per real pair.
        patch: the (D, H, W) each batch of volumes larger than it is cropped to (:func:`crop_patches`).
    """

    train: PairTensors
    num_classes: int
    sampler: BatchSampler
    rng: torch.Generator
    geometric: GeometricRanges
    intensity: IntensityRanges
    unlabeled: PairTensors | None = None
    synthetic: int | None = None
    patch: tuple[int, int, int] | None = None

    @classmethod
    def seeded(cls, train: PairTensors, num_classes: int, *, seed: int, batch_size: int,
               sampling: str = "replacement", augmentation: str = "standard",
               unlabeled: PairTensors | None = None, synthetic: int | None = None,
               patch: tuple[int, int, int] | None = None) -> Batches:
        """Batches drawn from a generator seeded with ``seed``.

        Args:
            sampling: ``replacement`` or ``epochs`` (:class:`~genseg.sampling.BatchSampler`).
            augmentation: a preset of :data:`genseg.plugins.AUGMENTATIONS`.
        """
        rng = torch.Generator().manual_seed(seed)
        geometric, intensity = augmentation_ranges(augmentation)
        return cls(train, num_classes, BatchSampler(rng, batch_size, sampling), rng, geometric, intensity, unlabeled,
                   synthetic, patch)

    @property
    def device(self) -> torch.device:
        return self.train.images.device

    @property
    def channels(self) -> int:
        """Image channels of the pairs."""
        return self.train.images.shape[1]

    @property
    def spatial_dims(self) -> int:
        """2 for images, 3 for volumes."""
        return self.train.images.ndim - 2

    def picks(self, count: int) -> Tensor:
        """A batch of row indices into ``count`` rows."""
        return self.sampler(count).to(self.device)

    def real(self) -> tuple[Tensor, Tensor]:
        """A batch of training pairs as they are (volumes: a patch of each)."""
        assert self.train.masks is not None
        picks = self.picks(self.train.images.shape[0])
        images, masks = self.train.images[picks], self.train.masks[picks]
        return (images, masks) if self.patch is None else crop_patches(images, masks, self.patch, self.rng)

    def augmented(self) -> tuple[Tensor, Tensor]:
        """A batch of training pairs under the geometric + intensity augmentation."""
        images, masks = draw_and_augment_pairs(*self.real(), self.num_classes, self.rng, self.geometric)
        return apply_intensity(images, sample_intensity(images.shape[0], self.rng, self.intensity, self.device)), masks

    def synthetic_draw(self, generator: MaskToImage, count: int | None = None) -> SyntheticDraw:
        """The random part of a batch of synthetic pairs, drawn by ``generator`` from a fresh batch of
        training pairs (pix2pix: the first of its masks under docs/method.md's T, y~ = T(y)).

        Args:
            count: pairs to draw; default :attr:`synthetic` (None there: one per real pair).
        """
        images, masks = self.real()
        return generator.draw(images, masks, self.synthetic if count is None else count, self.rng)

    def unlabeled_images(self) -> Tensor:
        """A batch of the pool's unlabeled images (volumes: a patch of each, placed uniformly)."""
        assert self.unlabeled is not None, "a run of a method that needs unlabeled images"
        images = self.unlabeled.images[self.picks(self.unlabeled.images.shape[0])]
        if self.patch is None:
            return images
        blank = torch.zeros(images.shape[0], *images.shape[2:], dtype=torch.long, device=images.device)
        return crop_patches(images, blank, self.patch, self.rng)[0]

    def state_dict(self) -> dict[str, Any]:
        """The sampler's and the stream's state (``last.pt``'s ``sampler`` and ``rng`` entries)."""
        return {"sampler": self.sampler.state_dict(), "rng": self.rng.get_state()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.sampler.load_state_dict(state["sampler"])
        self.rng.set_state(state["rng"])
