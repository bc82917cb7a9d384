"""The pix2pix conditional-GAN losses (level 1 of SPEC.md).

With y the encoded masks, x the real images and G(y) the generated ones, all in [-1, 1], and D a
critic that sees a mask and an image concatenated along the channels:

    L_D = 1/2 [BCE(D([y, x]), 1) + BCE(D([y, G(y)]), 0)]
    L_G = BCE(D([y, G(y)]), 1) + lambda_L1 * |G(y) - x|_1

BCE is taken on logits, averaged over every patch of the PatchGAN; the L1 term is a mean over
pixels. The generator loss back-propagates into the critic's parameters too: the caller steps
only the generator's optimizer and zeroes the critic's gradients before the critic's own step.

Example:
    >>> loss_d = discriminator_loss(critic, masks, real, fake)
    >>> loss_g, parts = generator_loss(critic, masks, real, fake)
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn


def _critic_logits(disc: nn.Module, masks_enc: Tensor, images: Tensor) -> Tensor:
    return disc(torch.cat([masks_enc, images], dim=1))


def _bce_to(logits: Tensor, target: float) -> Tensor:
    return F.binary_cross_entropy_with_logits(logits, torch.full_like(logits, target))


def discriminator_loss(disc: nn.Module, masks_enc: Tensor, real_images: Tensor, fake_images: Tensor) -> Tensor:
    """The critic's loss: real pairs should score 1, generated pairs 0.

    Args:
        disc: the critic, e.g. :class:`~genseg.generators.pix2pix.PatchDiscriminator`.
        masks_enc: encoded masks (B, M, H, W).
        real_images: real images (B, C, H, W) in [-1, 1].
        fake_images: generated images (B, C, H, W) in [-1, 1]; detached here, so this loss
            never reaches the generator.

    Returns:
        The scalar loss.
    """
    real = _bce_to(_critic_logits(disc, masks_enc, real_images), 1.0)
    fake = _bce_to(_critic_logits(disc, masks_enc, fake_images.detach()), 0.0)
    return (real + fake) / 2


def generator_loss(
    disc: nn.Module,
    masks_enc: Tensor,
    real_images: Tensor,
    fake_images: Tensor,
    lambda_l1: float = 100.0,
) -> tuple[Tensor, dict[str, Tensor]]:
    """The generator's loss: fool the critic and stay close to the real image.

    Args:
        disc: the critic.
        masks_enc: encoded masks (B, M, H, W).
        real_images: real images (B, C, H, W) in [-1, 1].
        fake_images: generated images (B, C, H, W) in [-1, 1], attached to the generator's graph.
        lambda_l1: weight of the L1 term (100 in pix2pix).

    Returns:
        The scalar loss, and its detached parts ``"gan"``, ``"l1"`` and ``"total"`` for logging.
    """
    gan = _bce_to(_critic_logits(disc, masks_enc, fake_images), 1.0)
    l1 = F.l1_loss(fake_images, real_images)
    total = gan + lambda_l1 * l1
    return total, {"gan": gan.detach(), "l1": l1.detach(), "total": total.detach()}
