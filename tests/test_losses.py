"""segmentation_loss: known values, the binary BCE + Dice form, per-sample reduction, 2nd order."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from genseg.losses import segmentation_loss


def _confident_logits(labels: torch.Tensor, num_classes: int, margin: float = 30.0) -> torch.Tensor:
    """Logits whose argmax is ``labels`` with a softmax probability of 1 - O(exp(-margin))."""
    return margin * F.one_hot(labels, num_classes).movedim(-1, 1).float()


def test_perfect_prediction_is_near_zero() -> None:
    labels = torch.zeros(2, 16, 16, dtype=torch.long)
    labels[:, 4:10, 3:12] = 1
    labels[1, 12:, 12:] = 2
    assert segmentation_loss(_confident_logits(labels, 3), labels) < 1e-5


def test_wrong_prediction_is_large() -> None:
    labels = torch.zeros(1, 8, 8, dtype=torch.long)
    labels[:, 2:6, 2:6] = 1
    loss = segmentation_loss(_confident_logits(1 - labels, 2), labels)
    # Every pixel wrong by a margin of 30: cross-entropy ~30, soft Dice ~0.
    torch.testing.assert_close(loss, torch.tensor(31.0), atol=1e-3, rtol=0)


def test_binary_equals_bce_plus_soft_dice_on_logit_difference() -> None:
    logits = torch.randn(3, 2, 12, 12)
    labels = torch.randint(0, 2, (3, 12, 12))
    difference, foreground = logits[:, 1] - logits[:, 0], labels.float()
    bce = F.binary_cross_entropy_with_logits(difference, foreground, reduction="none").mean((1, 2))
    probability = torch.sigmoid(difference)
    intersection, total = (probability * foreground).sum((1, 2)), (probability + foreground).sum((1, 2))
    dice = (2 * intersection + 1e-5) / (total + 1e-5)
    expected = bce + 1 - dice
    torch.testing.assert_close(segmentation_loss(logits, labels, reduction="none"), expected)


def test_reduction_none_is_per_sample_and_averages_to_mean() -> None:
    logits = torch.randn(4, 3, 8, 8)
    labels = torch.randint(0, 3, (4, 8, 8))
    per_sample = segmentation_loss(logits, labels, reduction="none")
    assert per_sample.shape == (4,)
    torch.testing.assert_close(per_sample.mean(), segmentation_loss(logits, labels))
    torch.testing.assert_close(per_sample[1], segmentation_loss(logits[1:2], labels[1:2]))


def test_empty_target_gives_finite_loss_and_gradients() -> None:
    logits = torch.randn(2, 2, 8, 8, requires_grad=True)
    labels = torch.zeros(2, 8, 8, dtype=torch.long)
    loss = segmentation_loss(logits, labels)
    (grad,) = torch.autograd.grad(loss, logits)
    assert torch.isfinite(loss) and torch.isfinite(grad).all()
    assert segmentation_loss(_confident_logits(labels, 2), labels) < 1e-5  # nothing to find, nothing found


def test_twice_differentiable_matches_finite_differences() -> None:
    # d/dx of |dL/dlogits|^2 through an autograd graph, checked against a numerical derivative.
    labels = torch.randint(0, 3, (2, 6, 6))
    logits = torch.randn(2, 3, 6, 6, dtype=torch.double, requires_grad=True)

    def gradient_norm(z: torch.Tensor) -> torch.Tensor:
        (grad,) = torch.autograd.grad(segmentation_loss(z, labels), z, create_graph=True)
        return grad.square().sum()

    assert torch.autograd.gradcheck(gradient_norm, (logits,))


@pytest.mark.parametrize(
    ("logits_shape", "labels_shape", "reduction", "message"),
    [
        ((2, 1, 8, 8), (2, 8, 8), "mean", "K >= 2"),
        ((2, 2, 8, 8), (2, 8, 4), "mean", "does not match"),
        ((2, 2, 8, 8), (2, 8, 8), "sum", "reduction"),
    ],
)
def test_invalid_arguments(logits_shape: tuple, labels_shape: tuple, reduction: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        segmentation_loss(torch.zeros(logits_shape), torch.zeros(labels_shape, dtype=torch.long), reduction)
