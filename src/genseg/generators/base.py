"""What a mask-to-image generator must offer: the :class:`MaskToImage` protocol.

A synthetic pair is made in two phases. :meth:`MaskToImage.draw` takes the random part once, from
a batch of real training pairs: its label map, and whatever else the image is rendered from (for
pix2pix only the mask under T, :class:`MaskConditioned`; for a compositing generator also the
real source and target images it pastes between). :meth:`MaskToImage.render` then turns a draw
into images, differentiably in the generator's parameters and without further randomness, so
GenSeg's hypergradient can render one draw several times. The draw takes the real pairs, not a
mask alone, because a composite carries real texture: its image needs the source pair's image
aligned with the mask.

The generator level (:mod:`genseg.generator_level`), the generative methods
(:mod:`genseg.methods.separate`, :mod:`genseg.methods.genseg`), GenSeg's upper-level variables
(:mod:`genseg.methods.upper`) and the pair export (:mod:`genseg.generation`) use a generator
through these members only. How it learns from real pairs (pix2pix: a GAN step with its own
critic and optimizers) stays inside the implementation, so a generator of another kind is one
class implementing this protocol and one line in :data:`genseg.plugins.GENERATORS`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar, Protocol

import torch
from torch import Tensor, nn

from genseg.augment import draw_and_augment_labels

if TYPE_CHECKING:
    from genseg.config import GeneratorConfig

@dataclass
class SyntheticDraw:
    """The random part of a batch of synthetic pairs, drawn once.

    Args:
        masks: their label maps (B, H, W), or (B, D, H, W): the segmenter's targets.
        inputs: what :meth:`MaskToImage.render` draws the images from, besides the masks
            (a compositing generator's source and target images); empty for a mask-to-image kind.
    """

    masks: Tensor
    inputs: dict[str, Tensor] = field(default_factory=dict)

    def __len__(self) -> int:
        return self.masks.shape[0]

    def subset(self, rows: Tensor) -> SyntheticDraw:
        """The draw of the pairs ``rows`` picks."""
        return SyntheticDraw(self.masks[rows], {name: value[rows] for name, value in self.inputs.items()})

    @staticmethod
    def cat(draws: list[SyntheticDraw]) -> SyntheticDraw:
        """Several draws as one, their pairs in order."""
        return SyntheticDraw(torch.cat([draw.masks for draw in draws]),
                             {name: torch.cat([draw.inputs[name] for draw in draws]) for name in draws[0].inputs})


class MaskToImage(Protocol):
    """A generator of images from label maps, with its own way of learning from real pairs."""

    Options: ClassVar[type]
    """The dataclass of its own settings, the generator section's keys beside name, lr and
    pretrain_iterations (an empty dataclass for a kind without settings)."""

    draws_from_images: ClassVar[bool]
    """Whether :meth:`draw` reads the real images beside the masks (a compositor pastes them);
    False: it draws from label maps alone, so any folder of masks can be turned into pairs."""

    network: nn.Module
    """The module that draws the images: what ``best.pt`` and ``final.pt`` keep as ``"generator"``
    and all that export needs."""

    def __init__(self, settings: GeneratorConfig, num_classes: int, image_channels: int,
                 device: torch.device | str = "cpu", spatial_dims: int = 2) -> None:
        """An untrained generator for label maps of ``num_classes`` classes (background included),
        drawing images of ``image_channels`` channels (volumes with ``spatial_dims`` 3: a kind that
        cannot raises :class:`~genseg.errors.ConfigError`); ``settings.options`` as its ``Options``."""

    def generate(self, masks: Tensor) -> Tensor:
        """Images in [0, 1], (B, C, H, W), for integer label maps ``masks`` (B, H, W) (volumes:
        (B, C, D, H, W) for (B, D, H, W)).

        Drawn as training and export both draw them (its sampling noise on), and attached to
        the graph of its parameters: the hypergradient flows back through them.
        """

    def draw(self, images: Tensor, masks: Tensor, count: int | None, rng: torch.Generator) -> SyntheticDraw:
        """The random part of ``count`` synthetic pairs (None: one per real pair) drawn from a
        batch of real training pairs, every random choice taken from ``rng``."""

    def render(self, draw: SyntheticDraw) -> Tensor:
        """The images of a draw, in [0, 1], attached to the graph of the generator's parameters."""

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
        ``pretrained_steps``, which :class:`~genseg.generator_level.GeneratorLevel` keeps beside them)."""

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore :meth:`state_dict`."""


class MaskConditioned:
    """:meth:`MaskToImage.draw` and :meth:`MaskToImage.render` for a kind that draws from a label
    map alone: the draw is the first ``count`` masks under docs/method.md's mask augmentation T (y~ = T(y)),
    the image ``generate(y~)``."""

    draws_from_images = False
    num_classes: int

    def generate(self, masks: Tensor) -> Tensor:
        raise NotImplementedError

    def draw(self, images: Tensor, masks: Tensor, count: int | None, rng: torch.Generator) -> SyntheticDraw:
        return SyntheticDraw(draw_and_augment_labels(masks[:count], self.num_classes, rng))

    def render(self, draw: SyntheticDraw) -> Tensor:
        return self.generate(draw.masks)
