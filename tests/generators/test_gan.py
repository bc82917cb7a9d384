"""The pix2pix GAN losses, checked with critics whose verdict is known."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from genseg.generators.gan import discriminator_loss, generator_loss, mode_seeking_loss
from genseg.generators.pix2pix import PatchDiscriminator

REAL, FAKE = 1.0, -1.0  # image values the toy critics tell apart


class SignCritic(nn.Module):
    """Logit = confidence * image value, per pixel: > 0 says real for REAL images."""

    def __init__(self, confidence: float) -> None:
        super().__init__()
        self.confidence = confidence

    def forward(self, pairs: torch.Tensor) -> torch.Tensor:
        assert pairs.shape[1] == 2  # one mask channel + one image channel
        return self.confidence * pairs[:, 1:]


def _batch() -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    masks = torch.ones(2, 1, 4, 4)
    return masks, torch.full((2, 1, 4, 4), REAL), torch.full((2, 1, 4, 4), FAKE)


def test_perfect_critic() -> None:
    masks, real, fake = _batch()
    critic = SignCritic(20.0)
    assert discriminator_loss(critic, masks, real, fake) < 1e-8
    _, parts = generator_loss(critic, masks, real, fake, lambda_l1=0.0)
    assert parts["gan"].item() == pytest.approx(20.0, abs=1e-6)


def test_fooled_critic() -> None:
    masks, real, fake = _batch()
    critic = SignCritic(-20.0)
    assert discriminator_loss(critic, masks, real, fake).item() == pytest.approx(20.0, abs=1e-6)
    _, parts = generator_loss(critic, masks, real, fake, lambda_l1=0.0)
    assert parts["gan"] < 1e-8


def test_undecided_critic_gives_log_two() -> None:
    masks, real, fake = _batch()
    critic = SignCritic(0.0)
    assert discriminator_loss(critic, masks, real, fake).item() == pytest.approx(math.log(2))
    loss, _ = generator_loss(critic, masks, real, fake, lambda_l1=0.0)
    assert loss.item() == pytest.approx(math.log(2))


@pytest.mark.parametrize("lambda_l1", [0.0, 1.0, 100.0])
def test_l1_term_is_weighted_mean_absolute_error(lambda_l1: float) -> None:
    masks, real, _ = _batch()
    fake = real - 0.25
    critic = SignCritic(0.0)
    loss, parts = generator_loss(critic, masks, real, fake, lambda_l1=lambda_l1)
    assert parts["l1"].item() == pytest.approx(0.25)
    assert loss.item() == pytest.approx(math.log(2) + lambda_l1 * 0.25)
    assert parts["total"].item() == pytest.approx(loss.item())
    assert not any(part.requires_grad for part in parts.values())


def test_only_the_generator_loss_reaches_the_generated_images() -> None:
    critic = PatchDiscriminator(in_channels=2, ndf=4)
    masks = torch.randn(2, 1, 32, 32)
    real = torch.rand(2, 1, 32, 32) * 2 - 1
    fake = torch.zeros(2, 1, 32, 32, requires_grad=True)

    discriminator_loss(critic, masks, real, fake).backward()
    assert fake.grad is None
    assert all(p.grad is not None for p in critic.parameters())

    loss, _ = generator_loss(critic, masks, real, fake)
    loss.backward()
    assert fake.grad is not None and fake.grad.abs().sum() > 0


def test_mode_seeking_loss_is_the_inverse_of_the_image_to_latent_distance_ratio() -> None:
    latents_a, latents_b = torch.zeros(2, 3), torch.full((2, 3), 2.0)
    fake_a, fake_b = torch.zeros(2, 1, 4, 4), torch.full((2, 1, 4, 4), 0.5)
    assert mode_seeking_loss(fake_a, fake_b, latents_a, latents_b).item() == pytest.approx(1 / (0.5 / 2 + 1e-5))


def test_mode_seeking_loss_pushes_draws_apart() -> None:
    """Its gradient step makes a generator's images depend more on the latent, not less."""
    weight = torch.tensor(0.1, requires_grad=True)  # image = weight * latent
    latents_a, latents_b = torch.randn(4, 1, 4, 4), torch.randn(4, 1, 4, 4)
    mode_seeking_loss(weight * latents_a, weight * latents_b, latents_a, latents_b).backward()
    assert weight.grad < 0
