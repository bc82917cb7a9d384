"""What every training method shares: the context it works in and the step it must provide.

The methods differ only in what one optimization step does; the loop in
:mod:`genseg.training` owns everything else (validation, checkpoints, resume, logging).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch

from genseg.batches import Batches
from genseg.stepper import SegmenterStepper
from genseg.validation import ValidationSet

if TYPE_CHECKING:
    from genseg.config import RunConfig


@dataclass
class TrainingContext:
    """What a method's step works with: its batches, the segmenter's step, the validation pairs.

    Args:
        config: the run configuration; methods read their own sections (``generator``, ``mlo``).
        batches: the budget's training pairs (and the pool's unlabeled images) as batches, and the
            run's random stream (on ``device``).
        stepper: the segmenter, its optimizer and the step on real (+ synthetic) pairs.
        validation: the budget's validation pairs and their fixed views (on ``device``).
        device: where tensors live.
        progress: whether long stages (generator pre-training) show a progress bar.
    """

    config: RunConfig
    batches: Batches
    stepper: SegmenterStepper
    validation: ValidationSet
    device: torch.device
    progress: bool = True


class Method(ABC):
    """A training method: one step at a time, with its own resumable state.

    Args:
        context: the loop's training state.
    """

    name: str = ""
    needs_generator: bool = False
    """Whether it pre-trains a generator on the budget's pairs before its first step."""
    needs_unlabeled: bool = False
    """Whether it reads the images (never the masks) of the pool outside the budget."""
    augments: bool = True
    """Whether its real pairs go through ``train.augmentation`` (which mirrors TTA may average)."""
    volumes: bool = False
    """Whether it trains on whole volumes (``data.dims`` 3) as well as on images."""

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
