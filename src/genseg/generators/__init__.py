"""Mask-to-image generators, created by kind from the run's generator settings.

:data:`genseg.plugins.GENERATORS` lists the kinds: each is a class implementing
:class:`~genseg.generators.base.MaskToImage`, with a torch-free ``Options`` dataclass for its
own settings (:mod:`genseg.generators.options`). Adding a kind is a class, its options and a line
in :mod:`genseg.plugins`.

Example:
    >>> from genseg.config import GeneratorConfig
    >>> generator = create_generator(GeneratorConfig("pix2pix", ngf=16), num_classes=2, image_channels=3)
    >>> generator.generate(torch.zeros(2, 64, 64, dtype=torch.long)).shape
    torch.Size([2, 3, 64, 64])
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

from genseg.plugins import GENERATORS

if TYPE_CHECKING:
    import torch

    from genseg.config import GeneratorConfig
    from genseg.generators.base import MaskToImage

def generator_class(name: str) -> type[MaskToImage]:
    """The class of generator kind ``name`` (its module imported now).

    Raises:
        ValueError: for a name that is not registered (the available ones and the closest named).
    """
    return GENERATORS.load(name)


def create_generator(settings: GeneratorConfig, num_classes: int, image_channels: int,
                     device: torch.device | str = "cpu", spatial_dims: int = 2) -> MaskToImage:
    """The untrained generator ``settings`` describe, for label maps of ``num_classes`` classes.

    Args:
        settings: the run's generator settings (kind, learning rate, the kind's options).
        num_classes: K, background included.
        image_channels: channels of the images it draws.
        device: where its networks live.
        spatial_dims: 2 draws images, 3 volumes (a kind that draws only images refuses 3 with one line).
    """
    return generator_class(settings.name)(settings, num_classes, image_channels, device, spatial_dims=spatial_dims)


def __getattr__(name: str) -> Any:
    if name == "MaskToImage":
        return getattr(import_module("genseg.generators.base"), name)
    raise AttributeError(f"module 'genseg.generators' has no attribute {name!r}")


__all__ = ["MaskToImage", "create_generator", "generator_class"]
