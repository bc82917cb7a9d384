"""The two baselines without synthetic data: ``supervised`` and ``augment``."""

from __future__ import annotations

from genseg.methods.base import Method


class Supervised(Method):
    """Real pairs only, no augmentation."""

    name = "supervised"
    augments = False
    volumes = True

    def step(self, iteration: int) -> dict[str, float]:
        return self.context.stepper.step(*self.context.batches.real())


class Augment(Method):
    """Real pairs under the standard geometric (docs/method.md's T) + intensity augmentation."""

    name = "augment"
    volumes = True

    def step(self, iteration: int) -> dict[str, float]:
        return self.context.stepper.step(*self.context.batches.augmented())
