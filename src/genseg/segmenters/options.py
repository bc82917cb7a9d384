"""The settings of each segmenter, as torch-free dataclasses: a config names a segmenter and its
options, and they are checked when it is read, before any network is built or file written.

Each ``Options`` also says which input sides the network accepts (``size_multiple``, ``min_size``)
and, when it builds volumes too, ``spatial_dims = (2, 3)``; without it a segmenter is 2D only.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from genseg.errors import ConfigError


def _check_positive(option: str, value: int) -> None:
    if not isinstance(value, int) or isinstance(value, bool) or value < 1:
        raise ConfigError(f"option {option!r} must be a positive integer, got {value!r}")


@dataclass(frozen=True)
class UNetOptions:
    """MONAI BasicUNet.

    Args:
        base: width of the first level; ``base=16`` has 1.9 M parameters.
        norm: ``"batch"`` or ``"instance"``.
    """

    size_multiple: ClassVar[int] = 16
    min_size: ClassVar[int] = 32
    spatial_dims: ClassVar[tuple[int, ...]] = (2, 3)
    base: int = 16
    norm: str = "batch"

    def __post_init__(self) -> None:
        _check_positive("base", self.base)
        if self.norm not in ("batch", "instance"):
            raise ConfigError(f"option 'norm' must be 'batch' or 'instance', got {self.norm!r}")


@dataclass(frozen=True)
class AttentionUNetOptions:
    """MONAI AttentionUnet.

    Args:
        base: width of the first level.
    """

    size_multiple: ClassVar[int] = 16
    min_size: ClassVar[int] = 32
    spatial_dims: ClassVar[tuple[int, ...]] = (2, 3)
    base: int = 16

    def __post_init__(self) -> None:
        _check_positive("base", self.base)


@dataclass(frozen=True)
class DeepLabV3PlusOptions:
    """smp DeepLabV3+.

    Args:
        encoder: any smp encoder name (``smp.encoders.get_encoder_names()``), checked when built.
    """

    size_multiple: ClassVar[int] = 16
    min_size: ClassVar[int] = 32
    encoder: str = "resnet18"


@dataclass(frozen=True)
class SegFormerOptions:
    """smp SegFormer.

    Args:
        encoder: any smp encoder name; the SegFormer paper uses ``mit_b0`` .. ``mit_b5``.
    """

    size_multiple: ClassVar[int] = 32
    min_size: ClassVar[int] = 32
    encoder: str = "mit_b0"
