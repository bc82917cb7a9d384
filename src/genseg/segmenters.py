"""Segmentation networks created by name: ``create_segmenter("unet", in_channels=1, classes=2)``.

Every segmenter maps float images (B, C, H, W) in [0, 1] to logits (B, K, H, W), where K counts
the background (a binary task has K = 2 and is trained with a softmax). All of them are built
with random weights (nothing is downloaded) and are twice differentiable on CPU and GPU, which the
GenSeg hypergradient needs.

Example:
    >>> import torch
    >>> model = create_segmenter("unet", in_channels=1, classes=2, base=8)
    >>> check_input_size("unet", 128)
    >>> model(torch.rand(2, 1, 128, 128)).shape
    torch.Size([2, 2, 128, 128])
"""

from __future__ import annotations

import difflib
import inspect
from collections.abc import Callable, Iterable
from dataclasses import dataclass

import segmentation_models_pytorch as smp
from monai.networks.nets import AttentionUnet, BasicUNet
from torch import nn

from genseg.config import SegmenterConfig

__all__ = ["available_segmenters", "check_input_size", "create_segmenter", "segmenter_from_config"]


def _build_unet(in_channels: int, classes: int, *, base: int = 16, norm: str = "batch") -> nn.Module:
    """MONAI BasicUNet (2D): four poolings, widths (b, 2b, 4b, 8b, 16b, b), LeakyReLU.

    Batch norm by default: MONAI's default, instance norm, trained slowly and over-segmented under
    Adam with 2-7 training images (JSRT 3: test Dice 0.913 against 0.953 with batch norm).

    Input size: a multiple of 16, at least 32 (the 2x2 bottleneck keeps the norms defined).

    Args:
        base: width of the first level; ``base=16`` has 1.9 M parameters.
        norm: ``"batch"`` or ``"instance"``.
    """
    _check_positive("base", base)
    if norm not in ("batch", "instance"):
        raise ValueError(f"option 'norm' must be 'batch' or 'instance', got {norm!r}")
    features = (base, 2 * base, 4 * base, 8 * base, 16 * base, base)
    norm_layer = ("instance", {"affine": True}) if norm == "instance" else ("batch", {})
    return BasicUNet(spatial_dims=2, in_channels=in_channels, out_channels=classes, features=features,
                     norm=norm_layer)


def _build_attention_unet(in_channels: int, classes: int, *, base: int = 16) -> nn.Module:
    """MONAI AttentionUnet (2D, batch norm, attention gates on the skips): widths b .. 16b.

    Input size: a multiple of 16, at least 32 (batch norm needs more than one value at the
    bottleneck when a batch holds a single image).

    Args:
        base: width of the first level.
    """
    _check_positive("base", base)
    channels = (base, 2 * base, 4 * base, 8 * base, 16 * base)
    return AttentionUnet(
        spatial_dims=2, in_channels=in_channels, out_channels=classes, channels=channels, strides=(2, 2, 2, 2)
    )


def _build_deeplabv3plus(in_channels: int, classes: int, *, encoder: str = "resnet18") -> nn.Module:
    """smp DeepLabV3+ (output stride 16) with a randomly initialized encoder.

    Input size: a multiple of 16, at least 32. Training needs batches of at least 2 images: the
    ASPP image-pooling branch applies batch norm to a 1x1 map.

    Args:
        encoder: any smp encoder name (``smp.encoders.get_encoder_names()``).
    """
    _check_encoder(encoder)
    return smp.DeepLabV3Plus(encoder_name=encoder, encoder_weights=None, in_channels=in_channels, classes=classes)


def _build_segformer(in_channels: int, classes: int, *, encoder: str = "mit_b0") -> nn.Module:
    """smp SegFormer with a randomly initialized Mix Transformer encoder (mit_b0: 3.7 M parameters).

    Input size: a multiple of 32, at least 32.

    Args:
        encoder: any smp encoder name; the SegFormer paper uses ``mit_b0`` .. ``mit_b5``.
    """
    _check_encoder(encoder)
    return smp.Segformer(encoder_name=encoder, encoder_weights=None, in_channels=in_channels, classes=classes)


@dataclass(frozen=True)
class _Entry:
    """A registered segmenter: its builder and the input sides it accepts."""

    build: Callable[..., nn.Module]
    size_multiple: int
    min_size: int


_SEGMENTERS: dict[str, _Entry] = {
    "unet": _Entry(_build_unet, size_multiple=16, min_size=32),
    "attention_unet": _Entry(_build_attention_unet, size_multiple=16, min_size=32),
    "deeplabv3plus": _Entry(_build_deeplabv3plus, size_multiple=16, min_size=32),
    "segformer": _Entry(_build_segformer, size_multiple=32, min_size=32),
}


def available_segmenters() -> list[str]:
    """The registered segmenter names, sorted."""
    return sorted(_SEGMENTERS)


def create_segmenter(name: str, in_channels: int, classes: int, **options: object) -> nn.Module:
    """Build a registered segmenter with random weights.

    Args:
        name: one of :func:`available_segmenters`.
        in_channels: image channels C (1 for grayscale, 3 for RGB).
        classes: output channels K, background included (2 for a binary task).
        **options: the builder's keyword options (e.g. ``base`` for ``"unet"``, ``encoder`` for
            ``"deeplabv3plus"``); see the builder's docstring.

    Returns:
        A module mapping (B, C, H, W) images to (B, K, H, W) logits.

    Raises:
        ValueError: unknown name, unknown option, or invalid channel/class counts.
    """
    entry = check_segmenter(SegmenterConfig(name, dict(options)))
    if in_channels < 1:
        raise ValueError(f"in_channels must be at least 1, got {in_channels}")
    if classes < 2:
        raise ValueError(f"classes counts the background and must be at least 2 (2 for a binary task), got {classes}")
    return entry.build(in_channels, classes, **options)


def check_segmenter(config: SegmenterConfig) -> _Entry:
    """A registered name and options it accepts, checked without building anything (before a run writes files).

    Raises:
        ValueError: unknown name or option.
    """
    entry = _lookup(config.name)
    accepted = [p.name for p in inspect.signature(entry.build).parameters.values() if p.kind is p.KEYWORD_ONLY]
    for option in config.options:
        if option not in accepted:
            raise ValueError(f"unknown option {option!r} for segmenter {config.name!r}; its options are {accepted}")
    return entry


def segmenter_from_config(config: SegmenterConfig, in_channels: int, classes: int) -> nn.Module:
    """The segmenter a run's config names, with its options: the one place training and inference build it."""
    return create_segmenter(config.name, in_channels, classes, **config.options)


def check_input_size(name: str, size: int | tuple[int, int]) -> None:
    """Raise ValueError if images of this side (or (H, W)) cannot go through segmenter ``name``.

    Args:
        name: a registered segmenter name.
        size: square side, or (height, width).
    """
    entry = _lookup(name)
    sides = (size, size) if isinstance(size, int) else tuple(size)
    for side in sides:
        if side < entry.min_size or side % entry.size_multiple:
            raise ValueError(
                f"segmenter {name!r} needs image sides that are multiples of {entry.size_multiple} "
                f"and at least {entry.min_size}, got {size}; resize the images (e.g. data size 128)"
            )


def _lookup(name: str) -> _Entry:
    if name in _SEGMENTERS:
        return _SEGMENTERS[name]
    raise ValueError(
        f"unknown segmenter {name!r}: available are {available_segmenters()}{_did_you_mean(name, _SEGMENTERS)}"
    )


def _check_positive(option: str, value: int) -> None:
    if not isinstance(value, int) or value < 1:
        raise ValueError(f"option {option!r} must be a positive integer, got {value!r}")


def _check_encoder(encoder: str) -> None:
    names = smp.encoders.get_encoder_names()
    if encoder not in names:
        raise ValueError(f"option 'encoder': unknown smp encoder {encoder!r}{_did_you_mean(encoder, names)}")


def _did_you_mean(name: str, choices: Iterable[str]) -> str:
    close = difflib.get_close_matches(name, list(choices), n=1)
    return f"; did you mean {close[0]!r}?" if close else ""
