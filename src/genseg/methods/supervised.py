"""The two baselines without synthetic data: ``supervised`` and ``augment``."""

from __future__ import annotations

from genseg.methods.base import Method


class Supervised(Method):
    """Real pairs only, no augmentation."""

    name = "supervised"

    def step(self, iteration: int) -> dict[str, float]:
        return self.context.segmenter_step(*self.context.real_batch())


class Augment(Method):
    """Real pairs under the standard geometric (SPEC.md's T) + intensity augmentation."""

    name = "augment"

    def step(self, iteration: int) -> dict[str, float]:
        return self.context.segmenter_step(*self.context.augmented_real_batch())
