"""What a mask-to-image generator must offer: the :class:`MaskToImage` protocol.

The generator level (:mod:`genseg.generators.level`), the generative methods
(:mod:`genseg.methods.separate`, :mod:`genseg.methods.genseg`), GenSeg's upper-level variables
(:mod:`genseg.methods.upper`) and the pair export (:mod:`genseg.generation`) use a generator
through these members only. How it learns from real pairs (pix2pix: a GAN step with its own
critic and optimizers) stays inside the implementation, so a generator of another kind is one
class implementing this protocol and one line in :data:`genseg.generators.GENERATORS`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import field
from typing import TYPE_CHECKING, Any, ClassVar, Protocol

import torch
from torch import Tensor, nn

if TYPE_CHECKING:
    from genseg.config import GeneratorConfig

#: The ``Options`` field metadata key of a setting written to config.json only when it is set.
RECORDED_WHEN_SET = "recorded_when_set"


def added_setting(default: Any) -> Any:
    """An ``Options`` field for a setting added after runs were made without it.

    It is recorded in the config's generator section only when it differs from ``default``, so
    the runs that leave it off keep their config.json and their generator pre-training's key (a
    hash of the config, :func:`~genseg.runs.pretraining_key`): they resume and share as before.
    """
    return field(default=default, metadata={RECORDED_WHEN_SET: True})


class MaskToImage(Protocol):
    """A generator of images from label maps, with its own way of learning from real pairs."""

    Options: ClassVar[type]
    """The dataclass of its own settings, the generator section's keys beside name, lr and
    pretrain_iterations (an empty dataclass for a kind without settings)."""

    network: nn.Module
    """The module that draws the images: what ``best.pt`` and ``final.pt`` keep as ``"generator"``
    and all that export needs."""

    def __init__(self, settings: GeneratorConfig, num_classes: int, image_channels: int,
                 device: torch.device | str = "cpu") -> None:
        """An untrained generator for label maps of ``num_classes`` classes (background included),
        drawing images of ``image_channels`` channels; ``settings.options`` as its ``Options``."""

    def generate(self, masks: Tensor) -> Tensor:
        """Images in [0, 1], (B, C, H, W), for integer label maps ``masks`` (B, H, W).

        Drawn as training and export both draw them (its sampling noise on), and attached to
        the graph of its parameters: the hypergradient flows back through them.
        """

    def arch_parameters(self) -> list[nn.Parameter]:
        """Its architecture weights A (GenSeg's ``arch`` upper level), parameters of :attr:`network`;
        empty if it has none."""

    def weight_parameters(self) -> list[nn.Parameter]:
        """The weights its own training step moves (GenSeg's ``generator`` upper level): with
        :meth:`arch_parameters`, all of :attr:`network`'s parameters."""

    def train_step(self, images: Tensor, masks: Tensor,
                   before_step: Callable[[], None] | None = None) -> dict[str, float]:
        """One step of its own training on real pairs; returns scalars to log.

        Args:
            images: real images in [0, 1].
            masks: their label maps.
            before_step: called after the backward pass of its loss and before its optimizer
                step: GenSeg's upper-level variables add their hypergradient feedback to the
                gradients of :meth:`weight_parameters` there.
        """

    def state_dict(self) -> dict[str, Any]:
        """Everything a resumed run needs: its networks and their optimizers (any key but
        ``pretrained_steps``, which :class:`~genseg.generators.level.GeneratorLevel` keeps beside them)."""

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore :meth:`state_dict`."""
