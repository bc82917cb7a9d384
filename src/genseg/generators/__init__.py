"""Mask-to-image generators, created by kind from the run's generator settings.

:data:`GENERATORS` is the one list of kinds: each is a class implementing
:class:`~genseg.generators.base.MaskToImage`, with an ``Options`` dataclass for its own settings.
Adding a kind is a class and a line here.

Example:
    >>> from genseg.config import GeneratorConfig
    >>> generator = create_generator(GeneratorConfig("pix2pix", ngf=16), num_classes=2, image_channels=3)
    >>> generator.generate(torch.zeros(2, 64, 64, dtype=torch.long)).shape
    torch.Size([2, 3, 64, 64])
"""

from __future__ import annotations

import difflib
from dataclasses import asdict, fields
from typing import TYPE_CHECKING, Any

import torch

from genseg.generators.base import RECORDED_WHEN_SET, MaskToImage
from genseg.generators.composite import Compositor
from genseg.generators.pix2pix import Pix2Pix

if TYPE_CHECKING:
    from genseg.config import GeneratorConfig

GENERATORS: dict[str, type[MaskToImage]] = {
    "pix2pix": Pix2Pix,
    "composite": Compositor,
}


def available_generators() -> list[str]:
    """The registered generator kinds, sorted."""
    return sorted(GENERATORS)


def generator_class(name: str) -> type[MaskToImage]:
    """The class of generator kind ``name``.

    Raises:
        ValueError: for a name that is not registered (the available ones and the closest named).
    """
    if name in GENERATORS:
        return GENERATORS[name]
    close = difflib.get_close_matches(name, GENERATORS, n=1)
    hint = f" Did you mean {close[0]!r}?" if close else ""
    raise ValueError(f"unknown generator {name!r}; available: {', '.join(available_generators())}.{hint}")


def generator_options(name: str, options: dict[str, Any]) -> dict[str, Any]:
    """The settings of kind ``name``, checked by its ``Options`` and completed with its defaults
    (but for those added later and left at their default, see :func:`~genseg.generators.base.added_setting`).

    Raises:
        ValueError: an unknown kind, a setting the kind does not have, or a value it refuses.
    """
    kind = generator_class(name)
    accepted = [f.name for f in fields(kind.Options)]
    unknown = sorted(set(options) - set(accepted))
    if unknown:
        raise ValueError(f"unknown generator setting(s) {unknown} for {name!r}; accepted: name, lr, "
                         f"pretrain_iterations{''.join(', ' + option for option in accepted)}")
    checked = asdict(kind.Options(**options))
    return {f.name: checked[f.name] for f in fields(kind.Options)
            if not (f.metadata.get(RECORDED_WHEN_SET) and checked[f.name] == f.default)}


def create_generator(settings: GeneratorConfig, num_classes: int, image_channels: int,
                     device: torch.device | str = "cpu") -> MaskToImage:
    """The untrained generator ``settings`` describe, for label maps of ``num_classes`` classes.

    Args:
        settings: the run's generator settings (kind, learning rate, the kind's options).
        num_classes: K, background included.
        image_channels: channels of the images it draws.
        device: where its networks live.
    """
    return generator_class(settings.name)(settings, num_classes, image_channels, device)


__all__ = ["GENERATORS", "MaskToImage", "available_generators", "create_generator", "generator_class",
           "generator_options"]
