"""What every training method shares: the context it works in and the step it must provide.

The methods differ only in what one optimization step does; the loop in
:mod:`genseg.training` owns everything else (validation, checkpoints, resume, logging).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from genseg.augment import (
    apply_intensity,
    augment_labels,
    augment_pairs,
    augmentation_ranges,
    sample_geometric,
    sample_intensity,
)
from genseg.config import RunConfig
from genseg.data import PairTensors
from genseg.generators.level import generator_pairs
from genseg.losses import segmentation_loss
from genseg.sampling import BatchSampler
from genseg.validation import ValidationSet


@dataclass
class TrainingContext:
    """The state a method's step reads and updates.

    Args:
        config: the run configuration.
        segmenter: the model being trained.
        optimizer: the segmenter's optimizer.
        train: the budget's training pairs (on ``device``).
        validation: the budget's validation pairs and their fixed views (on ``device``).
        num_classes: label values incl. background.
        rng: the generator every random draw of the run comes from (saved for resume).
        sampler: which training rows make each batch (draws from ``rng``; saved for resume).
        device: where tensors live.
        progress: whether long stages (generator pre-training) show a progress bar.
        unlabeled: images of the pool outside the budget (semi-supervised method only).
    """

    config: RunConfig
    segmenter: nn.Module
    optimizer: torch.optim.Optimizer
    train: PairTensors
    validation: ValidationSet
    num_classes: int
    rng: torch.Generator
    sampler: BatchSampler
    device: torch.device
    progress: bool = True
    unlabeled: PairTensors | None = None

    def picks(self, count: int) -> Tensor:
        """A batch of row indices into ``count`` rows (see :class:`genseg.sampling.BatchSampler`)."""
        return self.sampler(count).to(self.device)

    def real_batch(self) -> tuple[Tensor, Tensor]:
        """A batch of training pairs."""
        picks = self.picks(self.train.images.shape[0])
        assert self.train.masks is not None
        return self.train.images[picks], self.train.masks[picks]

    def augmented_real_batch(self) -> tuple[Tensor, Tensor]:
        """A training batch under the recipe's geometric + intensity augmentation."""
        images, masks = self.real_batch()
        geometric, intensity = augmentation_ranges(self.config.train.augmentation)
        geometry = sample_geometric(images.shape[0], self.rng, geometric, device=self.device)
        images, masks = augment_pairs(images, masks, self.num_classes, geometry)
        return apply_intensity(images, sample_intensity(images.shape[0], self.rng, intensity, self.device)), masks

    def generator_batch(self) -> tuple[Tensor, Tensor]:
        """Training pairs for the generator's own step (see :func:`genseg.generators.level.generator_pairs`)."""
        return generator_pairs(*self.real_batch(), self.num_classes, self.rng)

    def augmented_masks(self) -> Tensor:
        """Training masks under T, the input of the generator (y~ of SPEC.md)."""
        _, masks = self.real_batch()
        return augment_labels(masks, self.num_classes, sample_geometric(masks.shape[0], self.rng, device=self.device))

    def segmenter_step(self, images: Tensor, masks: Tensor, synthetic: tuple[Tensor, Tensor] | None = None,
                       synthetic_weights: Tensor | None = None) -> dict[str, float]:
        """One optimizer step on L_real (+ gamma * L_syn).

        Real and synthetic pairs go through the segmenter in two passes, as GenSeg's unroll
        evaluates them (:mod:`genseg.mlo`): with batch norm, every step of every method then sees
        the same batch statistics, per half, and GenSeg's reused gradient is this step's gradient.

        Args:
            synthetic_weights: a weight per synthetic pair (GenSeg's ``pairs`` upper level);
                default 1 each.
        """
        self.segmenter.train()
        self.optimizer.zero_grad(set_to_none=True)
        if synthetic is None:
            loss = segmentation_loss(self.segmenter(images), masks)
            loss.backward()
            self.optimizer.step()
            return {"loss": loss.item()}
        real_loss = segmentation_loss(self.segmenter(images), masks)
        per_pair = segmentation_loss(self.segmenter(synthetic[0]), synthetic[1], reduction="none")
        synthetic_loss = (per_pair if synthetic_weights is None else per_pair * synthetic_weights.to(per_pair)).mean()
        loss = real_loss + self.config.mlo.gamma * synthetic_loss
        loss.backward()
        self.optimizer.step()
        return {"loss": loss.item(), "loss_real": real_loss.item(), "loss_synthetic": synthetic_loss.item()}

    def segmenter_step_with(self, grads: list[Tensor]) -> None:
        """One optimizer step with detached gradients computed elsewhere (one per trainable parameter, in order)."""
        params = [p for p in self.segmenter.parameters() if p.requires_grad]
        for param, grad in zip(params, grads, strict=True):
            param.grad = grad  # the caller's fresh tensors: no copy on the training step
        self.optimizer.step()


class Method(ABC):
    """A training method: one step at a time, with its own resumable state.

    Args:
        context: the shared training state.
    """

    name: str = ""
    needs_generator: bool = False
    """Whether it pre-trains a generator on the budget's pairs before its first step."""
    needs_unlabeled: bool = False
    """Whether it reads the images (never the masks) of the pool outside the budget."""

    def __init__(self, context: TrainingContext) -> None:
        self.context = context

    def prepare(self, run_dir: Path) -> None:
        """Work before the first step (e.g. generator pre-training); nothing by default."""

    @abstractmethod
    def step(self, iteration: int) -> dict[str, float]:
        """One optimization step; returns scalars to log (at least ``"loss"``)."""

    def state_dict(self) -> dict[str, Any]:
        """The method's own resumable state (generators, their optimizers...)."""
        return {}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore :meth:`state_dict`."""

    def exported_weights(self) -> dict[str, Any]:
        """Weights saved beside the segmenter in ``best.pt``/``final.pt`` (e.g. the generator)."""
        return {}
