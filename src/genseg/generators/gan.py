"""The pix2pix conditional-GAN losses (level 1 of docs/method.md), and the state of a kind trained against a critic.

With y the encoded masks, x the real images and G(y) the generated ones, all in [-1, 1], and D a
critic that sees a mask and an image concatenated along the channels:

    L_D = 1/2 [BCE(D([y, x]), 1) + BCE(D([y, G(y)]), 0)]
    L_G = BCE(D([y, G(y)]), 1) + lambda_L1 * |G(y) - x|_1

BCE is taken on logits, averaged over every patch of the PatchGAN; the L1 term is a mean over
pixels. The generator loss back-propagates into the critic's parameters too: the caller steps
only the generator's optimizer and zeroes the critic's gradients before the critic's own step.
The critic is any function of the pairs: the network itself, or the network behind DiffAugment
(:mod:`genseg.generators.diffaugment`). :func:`mode_seeking_loss` is an optional extra term of
L_G for generators with a noise input.

Example:
    >>> loss_d = discriminator_loss(critic, masks, real, fake)
    >>> loss_g, parts = generator_loss(critic, masks, real, fake)
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor

Critic = Callable[[Tensor], Tensor]
"""Patch logits for pairs concat(mask encoding, image), e.g. a
:class:`~genseg.generators.pix2pix.PatchDiscriminator`."""


def _critic_logits(disc: Critic, masks_enc: Tensor, images: Tensor) -> Tensor:
    return disc(torch.cat([masks_enc, images], dim=1))


def _bce_to(logits: Tensor, target: float) -> Tensor:
    return F.binary_cross_entropy_with_logits(logits, torch.full_like(logits, target))


def discriminator_loss(disc: Critic, masks_enc: Tensor, real_images: Tensor, fake_images: Tensor,
                       fake_masks_enc: Tensor | None = None) -> Tensor:
    """The critic's loss: real pairs should score 1, generated pairs 0.

    Args:
        disc: the critic, e.g. :class:`~genseg.generators.pix2pix.PatchDiscriminator`.
        masks_enc: encoded masks (B, M, H, W).
        real_images: real images (B, C, H, W) in [-1, 1].
        fake_images: generated images (B, C, H, W) in [-1, 1]; detached here, so this loss
            never reaches the generator.
        fake_masks_enc: the generated images' own masks where they differ from the real ones'
            (a composite's union); default ``masks_enc``.

    Returns:
        The scalar loss.
    """
    real = _bce_to(_critic_logits(disc, masks_enc, real_images), 1.0)
    fake_masks = masks_enc if fake_masks_enc is None else fake_masks_enc
    fake = _bce_to(_critic_logits(disc, fake_masks, fake_images.detach()), 0.0)
    return (real + fake) / 2


def generator_loss(
    disc: Critic,
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


def mode_seeking_loss(fake_a: Tensor, fake_b: Tensor, latents_a: Tensor, latents_b: Tensor,
                      eps: float = 1e-5) -> Tensor:
    """The mode-seeking term of Mao et al., "Mode seeking generative adversarial networks for
    diverse image synthesis" (CVPR 2019): small when two latents give images as far apart as the
    latents are, large when the generator ignores its noise (the pix2pix failure: its L1 term pulls
    every draw to the one real image).

        L_ms = 1 / (mean|G(y, z_a) - G(y, z_b)| / mean|z_a - z_b| + eps)

    (their code's form of maximizing the ratio).

    Args:
        fake_a: images drawn for masks y with ``latents_a``.
        fake_b: images drawn for the same masks with ``latents_b``.
        latents_a: the latents of ``fake_a``.
        latents_b: the latents of ``fake_b``.
        eps: keeps the term finite when the images coincide.

    Returns:
        The scalar loss.
    """
    ratio = (fake_a - fake_b).abs().mean() / (latents_a - latents_b).abs().mean()
    return 1 / (ratio + eps)


class AdversarialState:
    """The resumable state of a generator kind trained against a critic: its network, the critic and
    their optimizers (``last.pt``'s and ``pretrain.pt``'s layout for pix2pix and the compositor)."""

    network: torch.nn.Module
    discriminator: torch.nn.Module
    generator_optimizer: torch.optim.Optimizer
    discriminator_optimizer: torch.optim.Optimizer

    def state_dict(self) -> dict[str, Any]:
        return {
            "generator": self.network.state_dict(),
            "discriminator": self.discriminator.state_dict(),
            "generator_optimizer": self.generator_optimizer.state_dict(),
            "discriminator_optimizer": self.discriminator_optimizer.state_dict(),
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.network.load_state_dict(state["generator"])
        self.discriminator.load_state_dict(state["discriminator"])
        self.generator_optimizer.load_state_dict(state["generator_optimizer"])
        self.discriminator_optimizer.load_state_dict(state["discriminator_optimizer"])
