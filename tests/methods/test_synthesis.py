"""Level 1 helpers: the generator feedback's scale."""

from __future__ import annotations

import pytest
import torch

from genseg.methods.upper import feedback_scale


def test_feedback_is_scaled_to_a_share_of_the_gan_gradient() -> None:
    params = [torch.nn.Parameter(torch.ones(3)), torch.nn.Parameter(torch.ones(4))]
    params[0].grad = torch.full((3,), 2.0)
    params[1].grad = torch.zeros(4)
    feedback = [torch.full((3,), 1e-4), torch.full((4,), -1e-4)]
    scale = feedback_scale(params, feedback, relative=0.5)
    scaled_norm = scale * torch.sqrt(sum((g**2).sum() for g in feedback))
    gan_norm = torch.sqrt(sum((p.grad**2).sum() for p in params))
    assert float(scaled_norm) == pytest.approx(0.5 * float(gan_norm), rel=1e-6)


def test_zero_feedback_gets_zero_scale() -> None:
    params = [torch.nn.Parameter(torch.ones(2))]
    params[0].grad = torch.ones(2)
    assert feedback_scale(params, [torch.zeros(2)], relative=0.5) == 0.0
