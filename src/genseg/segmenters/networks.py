"""The segmentation networks: one builder per registered segmenter (:data:`genseg.plugins.SEGMENTERS`).

Each builder takes the image channels, the classes (background included) and the segmenter's
``Options``, and returns a network with random weights (nothing is downloaded).
"""

from __future__ import annotations

import difflib

import segmentation_models_pytorch as smp
from monai.networks.nets import AttentionUnet, BasicUNet
from torch import nn

from genseg.errors import ConfigError
from genseg.segmenters.options import AttentionUNetOptions, DeepLabV3PlusOptions, SegFormerOptions, UNetOptions


def build_unet(in_channels: int, classes: int, options: UNetOptions, spatial_dims: int = 2) -> nn.Module:
    """MONAI BasicUNet (2D, or 3D on volumes): four poolings, widths (b, 2b, 4b, 8b, 16b, b), LeakyReLU.

    Batch norm by default: MONAI's default, instance norm, trained slowly and over-segmented under
    Adam with 2-7 training images (JSRT 3: test Dice 0.913 against 0.953 with batch norm).

    Input size: a multiple of 16, at least 32 (the 2x2 bottleneck keeps the norms defined), every
    side of a volume as well.

    Options: :class:`~genseg.segmenters.options.UNetOptions`.
    """
    base = options.base
    features = (base, 2 * base, 4 * base, 8 * base, 16 * base, base)
    norm_layer = ("instance", {"affine": True}) if options.norm == "instance" else ("batch", {})
    return BasicUNet(spatial_dims=spatial_dims, in_channels=in_channels, out_channels=classes, features=features,
                     norm=norm_layer)


def build_attention_unet(in_channels: int, classes: int, options: AttentionUNetOptions, spatial_dims: int = 2
                         ) -> nn.Module:
    """MONAI AttentionUnet (2D or 3D, batch norm, attention gates on the skips): widths b .. 16b.

    Input size: a multiple of 16, at least 32 (batch norm needs more than one value at the
    bottleneck when a batch holds a single image).

    Options: :class:`~genseg.segmenters.options.AttentionUNetOptions`.
    """
    base = options.base
    channels = (base, 2 * base, 4 * base, 8 * base, 16 * base)
    return AttentionUnet(
        spatial_dims=spatial_dims, in_channels=in_channels, out_channels=classes, channels=channels,
        strides=(2, 2, 2, 2)
    )


def build_deeplabv3plus(in_channels: int, classes: int, options: DeepLabV3PlusOptions) -> nn.Module:
    """smp DeepLabV3+ (output stride 16) with a randomly initialized encoder.

    Input size: a multiple of 16, at least 32. Training needs batches of at least 2 images: the
    ASPP image-pooling branch applies batch norm to a 1x1 map.

    Options: :class:`~genseg.segmenters.options.DeepLabV3PlusOptions`.
    """
    return smp.DeepLabV3Plus(encoder_name=_checked_encoder(options.encoder), encoder_weights=None,
                             in_channels=in_channels, classes=classes)


def build_segformer(in_channels: int, classes: int, options: SegFormerOptions) -> nn.Module:
    """smp SegFormer with a randomly initialized Mix Transformer encoder (mit_b0: 3.7 M parameters).

    Input size: a multiple of 32, at least 32.

    Options: :class:`~genseg.segmenters.options.SegFormerOptions`.
    """
    return smp.Segformer(encoder_name=_checked_encoder(options.encoder), encoder_weights=None,
                         in_channels=in_channels, classes=classes)


def _checked_encoder(encoder: str) -> str:
    names = smp.encoders.get_encoder_names()
    if encoder not in names:
        close = difflib.get_close_matches(encoder, names, n=1)
        raise ConfigError(f"option 'encoder': unknown smp encoder {encoder!r}"
                         + (f"; did you mean {close[0]!r}?" if close else ""))
    return encoder
