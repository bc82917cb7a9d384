"""Between the data and the generator: mask encoding in, differentiable image post-processing out.

The generator works in [-1, 1] (pix2pix convention; Tanh output), the rest of genseg in [0, 1]
with each real image min-max normalized by its 0.5 / 99.5 percentiles. Everything here is plain
torch arithmetic, so the synthetic image stays in the autograd graph: the hypergradient of
docs/method.md's level 3 flows from the segmenter's loss back into the generator. (The original GenSeg
code detached the synthetic image and round-tripped it through uint8, which cut that path.)

Example:
    >>> labels = torch.tensor([[[0, 1], [2, 0]]])
    >>> encode_masks(labels, num_classes=3)[0, :, 1, 0]
    tensor([-1.,  1.])
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn


def mask_channels(num_classes: int) -> int:
    """Generator input channels for ``num_classes`` classes (background included): one per foreground class.

    Args:
        num_classes: K, background included (2 for a binary mask).

    Returns:
        K - 1.
    """
    if num_classes < 2:
        raise ValueError(f"num_classes must be at least 2 (background + one class), got {num_classes}")
    return num_classes - 1


def encode_masks(labels: Tensor, num_classes: int) -> Tensor:
    """One-hot encode the foreground classes of label maps, scaled to [-1, 1].

    Args:
        labels: integer label maps (B, H, W), or (B, D, H, W) for volumes, with values
            0..num_classes-1; 0 is background.
        num_classes: K, background included.

    Returns:
        float (B, K-1, H, W) (or (B, K-1, D, H, W)): 1 where the pixel has that class, -1
        elsewhere (a binary mask gives one channel).
    """
    mask_channels(num_classes)  # validates num_classes
    if labels.ndim not in (3, 4) or labels.dtype.is_floating_point or labels.dtype == torch.bool:
        raise ValueError(
            f"labels must be an integer tensor (B, H, W) or (B, D, H, W), got {labels.dtype} of shape "
            f"{tuple(labels.shape)}; drop the channel axis and convert with .long()"
        )
    if labels.numel() and (labels.min() < 0 or labels.max() >= num_classes):
        raise ValueError(
            f"labels hold values {int(labels.min())}..{int(labels.max())} but num_classes is "
            f"{num_classes}; pass the number of classes including background"
        )
    one_hot = F.one_hot(labels.long(), num_classes)[..., 1:]  # drop background
    return one_hot.movedim(-1, 1).float() * 2 - 1


def to_image_space(generated: Tensor) -> Tensor:
    """Map generator output from [-1, 1] to [0, 1], differentiably (no clamp, no quantization).

    Args:
        generated: Tanh output of the generator, any shape.

    Returns:
        ``(generated + 1) / 2``, still attached to the autograd graph.
    """
    return (generated + 1) / 2


def image_to_generator_space(images: Tensor) -> Tensor:
    """Map real images from [0, 1] to the generator's [-1, 1] (targets of the L1 loss and critic).

    Args:
        images: real images in [0, 1], any shape.

    Returns:
        ``2 * images - 1``.
    """
    return images * 2 - 1


def match_intensity(images: Tensor, eps: float = 1e-6) -> Tensor:
    """Min-max normalize each image to [0, 1] over all its channels, as real images are.

    Real images are stretched by their own percentiles when loaded; stretching synthetic images
    the same way keeps a generator that draws too dark or too flat from handing the segmenter
    images out of the real range. Differentiable (gradients reach the extreme pixels through the
    min and max, and every pixel through the subtraction and division).

    Args:
        images: (B, C, H, W) images, or (B, C, D, H, W) volumes.
        eps: added to the range so a constant image maps to zeros instead of dividing by zero.

    Returns:
        The images in [0, 1].
    """
    axes = tuple(range(1, images.ndim))
    low = images.amin(dim=axes, keepdim=True)
    high = images.amax(dim=axes, keepdim=True)
    return (images - low) / (high - low + eps)


def synthesize(generator: nn.Module, labels: Tensor, num_classes: int) -> Tensor:
    """Synthetic images for label maps: ``x~ = match_intensity(to_image_space(G(encode_masks(y~))))``.

    The one place the synthesis formula lives; training and export both call it. The result
    stays in the autograd graph of ``generator`` (wrap in ``torch.no_grad()`` when not needed).

    Args:
        generator: a mask-to-image generator (see :func:`~genseg.generators.create_generator`).
        labels: integer label maps (B, H, W) or (B, D, H, W), values 0..num_classes-1.
        num_classes: K, background included.

    Returns:
        (B, image_channels, H, W) images (or (B, image_channels, D, H, W) volumes) in [0, 1].
    """
    return match_intensity(to_image_space(generator(encode_masks(labels, num_classes))))
