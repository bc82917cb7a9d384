"""Mask-to-image generators and their critics, created by name.

Example:
    >>> from genseg.generators import create_discriminator, create_generator
    >>> generator = create_generator("pix2pix", mask_channels=1, image_channels=3, ngf=16)
    >>> critic = create_discriminator("pix2pix", mask_channels=1, image_channels=3)
"""

from __future__ import annotations

import difflib
import inspect
from collections.abc import Callable
from typing import Any, NamedTuple

from torch import nn

from genseg.generators.pix2pix import PatchDiscriminator, UNetGenerator


class _Entry(NamedTuple):
    generator: Callable[..., nn.Module]  # (mask_channels, image_channels, **options)
    discriminator: Callable[..., nn.Module]  # (in_channels, **options)


_REGISTRY: dict[str, _Entry] = {
    "pix2pix": _Entry(UNetGenerator, PatchDiscriminator),
}


def available_generators() -> list[str]:
    """The registered generator names, sorted."""
    return sorted(_REGISTRY)


def _entry(name: str) -> _Entry:
    if name in _REGISTRY:
        return _REGISTRY[name]
    close = difflib.get_close_matches(name, _REGISTRY, n=1)
    hint = f" Did you mean {close[0]!r}?" if close else ""
    raise ValueError(f"unknown generator {name!r}; available: {', '.join(available_generators())}.{hint}")


def _build(factory: Callable[..., nn.Module], name: str, args: tuple[int, ...], options: dict[str, Any]) -> nn.Module:
    accepted = list(inspect.signature(factory).parameters)[len(args):]
    unknown = sorted(set(options) - set(accepted))
    if unknown:
        raise ValueError(
            f"unknown option(s) {unknown} for {name!r} {factory.__name__}; accepted: {', '.join(accepted)}"
        )
    return factory(*args, **options)


def create_generator(name: str, mask_channels: int, image_channels: int, **options: Any) -> nn.Module:
    """Create a mask-to-image generator by name.

    Args:
        name: one of :func:`available_generators`, e.g. ``"pix2pix"``.
        mask_channels: input channels (see :func:`~genseg.generators.masks.mask_channels`).
        image_channels: output image channels.
        **options: passed to the generator; for ``"pix2pix"``: ``ngf``, ``num_downs``,
            ``searchable``, ``dropout`` (see :class:`~genseg.generators.pix2pix.UNetGenerator`).

    Returns:
        A module mapping (B, mask_channels, H, W) in [-1, 1] to (B, image_channels, H, W) in
        [-1, 1], with ``arch_parameters``, ``weight_parameters``, ``discretize`` and ``architecture``.
    """
    return _build(_entry(name).generator, name, (mask_channels, image_channels), options)


def create_discriminator(name: str, mask_channels: int, image_channels: int, **options: Any) -> nn.Module:
    """Create the critic that goes with generator ``name``.

    Args:
        name: one of :func:`available_generators`.
        mask_channels: channels of the mask encoding.
        image_channels: image channels.
        **options: passed to the critic; for ``"pix2pix"``: ``ndf``, ``n_layers`` (see
            :class:`~genseg.generators.pix2pix.PatchDiscriminator`).

    Returns:
        A module mapping concat(mask encoding, image) to patch logits (B, 1, h, w).
    """
    return _build(_entry(name).discriminator, name, (mask_channels + image_channels,), options)


__all__ = ["available_generators", "create_discriminator", "create_generator"]
