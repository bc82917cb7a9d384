"""The segmentation loss L_seg of docs/method.md: cross-entropy + (1 - soft Dice) over the foreground."""

from __future__ import annotations

import torch.nn.functional as F
from monai.losses import DiceLoss
from torch import Tensor

__all__ = ["segmentation_loss"]

# Per sample and foreground class; the smoothing keeps empty masks finite (an empty target with
# an all-background prediction scores Dice 1). MONAI's DiceCELoss would do both terms, but it
# only reduces to "mean" or "sum", and the methods need one loss per sample.
_soft_dice_loss = DiceLoss(include_background=False, to_onehot_y=True, softmax=True, reduction="none")


def segmentation_loss(logits: Tensor, target: Tensor, reduction: str = "mean") -> Tensor:
    """Cross-entropy plus one minus the soft Dice of the foreground classes.

    Per sample: the pixel-mean cross-entropy over all K classes, plus 1 - the mean over the
    foreground classes 1..K-1 of the soft Dice of the softmax probabilities (smoothing 1e-5).
    For K = 2 this is exactly the L_seg of docs/method.md, BCE-with-logits + (1 - soft Dice), on the
    logit difference z_1 - z_0: softmax cross-entropy of two logits equals binary cross-entropy
    of their difference, and the softmax foreground probability is sigmoid(z_1 - z_0).
    Twice differentiable (the GenSeg hypergradient differentiates through its gradient).

    Args:
        logits: (B, K, H, W) segmenter output, K >= 2 (or (B, K, D, H, W)).
        target: int64 label map (B, H, W) (or (B, D, H, W)) with values in 0..K-1.
        reduction: ``"mean"`` for the batch mean, ``"none"`` for one loss per sample, shape (B,);
            the mean of the ``"none"`` losses equals the ``"mean"`` loss.

    Returns:
        The loss, a scalar or a (B,) tensor.
    """
    if reduction not in ("mean", "none"):
        raise ValueError(f"reduction must be 'mean' or 'none', got {reduction!r}")
    if logits.shape[1] < 2:
        raise ValueError(f"logits need K >= 2 channels (background included), got shape {tuple(logits.shape)}")
    if target.shape != logits.shape[:1] + logits.shape[2:]:
        raise ValueError(f"target shape {tuple(target.shape)} does not match logits shape {tuple(logits.shape)}")
    cross_entropy = F.cross_entropy(logits, target, reduction="none").flatten(1).mean(1)
    dice_loss = _soft_dice_loss(logits, target.unsqueeze(1)).flatten(1).mean(1)
    loss = cross_entropy + dice_loss
    return loss.mean() if reduction == "mean" else loss
