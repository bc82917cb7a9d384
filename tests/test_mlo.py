"""The hypergradient checked against numerical derivatives on a tiny float64 problem."""

from __future__ import annotations

import copy
import math
from collections.abc import Callable
from typing import Any

import pytest
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from genseg.losses import segmentation_loss
from genseg.methods.upper import LearnedGamma, PairWeights
from genseg.mlo import (
    UnrolledProblem,
    add_hypergradient,
    hypergradient,
    hypergradient_darts,
    hypergradient_exact,
    unrolled_validation_loss,
)

SIZE = 8
GAMMA = 0.7  # not 1, so that a missing or doubled gamma would show
DTYPE = torch.float64


def make_segmenter(batch_norm: bool = False) -> nn.Module:
    """Two convolutions with SiLU and average pooling: smooth, so finite differences are exact."""
    torch.manual_seed(0)
    norm = [nn.BatchNorm2d(4)] if batch_norm else []
    net = nn.Sequential(
        nn.Conv2d(1, 4, 3, padding=1), *norm, nn.SiLU(), nn.AvgPool2d(3, stride=1, padding=1), nn.Conv2d(4, 2, 1)
    ).to(DTYPE)
    net[0].bias.requires_grad_(False)  # a frozen parameter: passed through, not unrolled
    return net


class TinyGenerator(nn.Module):
    """Mask -> image: a softmax(alpha) mixture of three candidate ops of different kinds, plus a shift."""

    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(1)
        self.ops = nn.ModuleList(
            [nn.Conv2d(1, 1, 3, padding=1), nn.Conv2d(1, 1, 3, padding=2, dilation=2), nn.Conv2d(1, 1, 3, padding=1)]
        )
        self.alpha = nn.Parameter(0.5 * torch.randn(3))
        self.shift = nn.Parameter(torch.zeros(1))
        self.to(DTYPE)

    def forward(self, masks: Tensor) -> Tensor:
        candidates = (self.ops[0](masks), self.ops[1](masks), torch.tanh(self.ops[2](masks)))
        mixture = sum(w * c for w, c in zip(torch.softmax(self.alpha, 0), candidates))
        return torch.sigmoid(mixture + self.shift)


def random_pairs(count: int, rng: torch.Generator) -> tuple[Tensor, Tensor]:
    """(images (B, 1, H, W), label maps (B, H, W)) of blocky binary masks."""
    coarse = torch.rand(count, 1, SIZE // 2, SIZE // 2, generator=rng, dtype=DTYPE) > 0.5
    masks = F.interpolate(coarse.to(DTYPE), size=SIZE, mode="nearest")
    images = 0.6 * masks + 0.2 + 0.1 * torch.randn(masks.shape, generator=rng, dtype=DTYPE)
    return images, masks[:, 0].long()


def make_problem(segmenter: nn.Module | None = None, lr: float = 1.0) -> tuple[UnrolledProblem, TinyGenerator]:
    rng = torch.Generator().manual_seed(2)
    images, labels = random_pairs(2, rng)
    val_images, val_labels = random_pairs(2, rng)
    _, synthetic_labels = random_pairs(2, rng)  # drawn once: the synthetic loss is a fixed function
    synthetic_masks = synthetic_labels.unsqueeze(1).to(DTYPE)
    generator = TinyGenerator()
    problem = UnrolledProblem(
        segmenter=segmenter if segmenter is not None else make_segmenter(),
        real_loss=lambda net: segmentation_loss(net(images), labels),
        synthetic_loss=lambda net: GAMMA * segmentation_loss(net(generator(synthetic_masks)), synthetic_labels),
        validation_loss=lambda net: segmentation_loss(net(val_images), val_labels),
        upper=[generator.alpha, generator.shift],
        lr=lr,
    )
    return problem, generator


def numerical_hypergradient(problem: UnrolledProblem, steps: int, h: float = 1e-6) -> Tensor:
    """Central differences of the unrolled validation loss, entry by entry of A (flattened)."""
    derivatives = []
    for a in problem.upper:
        entries = a.detach().view(-1)
        for i in range(entries.numel()):
            original = entries[i].item()
            values = []
            for shifted in (original + h, original - h):
                entries[i] = shifted
                values.append(unrolled_validation_loss(problem, steps).item())
            entries[i] = original
            derivatives.append((values[0] - values[1]) / (2 * h))
    return torch.tensor(derivatives, dtype=DTYPE)


def flat(grads: list[Tensor]) -> Tensor:
    return torch.cat([g.reshape(-1) for g in grads])


@pytest.mark.parametrize("steps", [1, 2])
def test_exact_hypergradient_matches_numerical_derivative(steps: int) -> None:
    problem, _ = make_problem()
    grads, val_loss, *_ = hypergradient_exact(problem, steps)
    numeric = numerical_hypergradient(problem, steps)
    assert [g.shape for g in grads] == [a.shape for a in problem.upper]
    assert numeric.abs().min() > 1e-6  # every entry of A really moves the validation loss
    torch.testing.assert_close(flat(grads), numeric, rtol=1e-3, atol=0.0)
    assert val_loss.item() == pytest.approx(unrolled_validation_loss(problem, steps).item(), rel=1e-12)


def test_darts_agrees_with_exact() -> None:
    problem, _ = make_problem()
    exact, exact_loss, *_ = hypergradient_exact(problem)
    darts, darts_loss, *_ = hypergradient_darts(problem, eps_scale=0.01)
    assert torch.cosine_similarity(flat(darts), flat(exact), dim=0) > 0.999
    torch.testing.assert_close(flat(darts), flat(exact), rtol=1e-2, atol=0.0)
    torch.testing.assert_close(darts_loss, exact_loss)


def test_one_step_fast_path_equals_full_unroll() -> None:
    problem, _ = make_problem()
    fast, fast_loss, *_ = hypergradient_exact(problem, steps=1)
    unrolled = unrolled_validation_loss(problem, steps=1)
    full = torch.autograd.grad(unrolled, problem.upper)
    torch.testing.assert_close(flat(fast), flat(list(full)), rtol=0.0, atol=1e-10)
    torch.testing.assert_close(fast_loss, unrolled.detach(), rtol=0.0, atol=1e-12)


@pytest.mark.parametrize(("method", "steps"), [("exact", 1), ("exact", 2), ("darts", 1)])
def test_hypergradient_returns_the_lower_levels_own_gradient(method: str, steps: int) -> None:
    """GenSeg's segmenter step reuses train_grads: they must be grad L_train at the current theta."""
    problem, _ = make_problem()
    result = hypergradient(problem, method, steps)
    params = [p for p in problem.segmenter.parameters() if p.requires_grad]
    real, synthetic = problem.real_loss(problem.segmenter), problem.synthetic_loss(problem.segmenter)
    expected = torch.autograd.grad(real + synthetic, params)
    torch.testing.assert_close(flat(result.train_grads), flat(list(expected)), rtol=1e-10, atol=1e-12)
    torch.testing.assert_close(result.real_loss, real.detach())
    torch.testing.assert_close(result.synthetic_loss, synthetic.detach())
    assert not any(g.requires_grad for g in result.train_grads)


def test_upper_adam_steps_reduce_unrolled_validation_loss() -> None:
    problem, _ = make_problem()
    start = [a.detach().clone() for a in problem.upper]
    optimizer = torch.optim.Adam(problem.upper, lr=0.2)
    losses = []
    for _ in range(5):
        optimizer.zero_grad(set_to_none=True)
        grads, val_loss, *_ = hypergradient_exact(problem)
        add_hypergradient(problem.upper, grads)
        optimizer.step()
        losses.append(val_loss.item())
    losses.append(unrolled_validation_loss(problem).item())
    assert all(not torch.equal(a0, a) for a0, a in zip(start, problem.upper))
    assert all(later < earlier for earlier, later in zip(losses, losses[1:]))  # every upper step helps
    assert losses[-1] < losses[0] - 1e-4


@pytest.mark.parametrize("batch_norm", [False, True])
def test_hypergradient_leaves_segmenter_untouched(batch_norm: bool) -> None:
    segmenter = make_segmenter(batch_norm).train()
    problem, generator = make_problem(segmenter)
    state = {k: v.clone() for k, v in segmenter.state_dict().items()}  # parameters and BN statistics
    hypergradient_exact(problem, steps=1)
    hypergradient_exact(problem, steps=2)
    hypergradient_darts(problem)
    for name, value in segmenter.state_dict().items():
        assert torch.equal(value, state[name]), name
    modules = (segmenter, generator)
    assert all(p.grad is None for m in modules for p in m.parameters())


def test_add_hypergradient_sets_then_accumulates_with_weight() -> None:
    param = nn.Parameter(torch.zeros(3, dtype=DTYPE))
    add_hypergradient([param], [torch.ones(3, dtype=DTYPE)])
    add_hypergradient([param], [torch.full((3,), 2.0, dtype=DTYPE)], weight=0.5)
    torch.testing.assert_close(param.grad, torch.full((3,), 2.0, dtype=DTYPE))


def test_hypergradient_dispatch_and_errors() -> None:
    problem, _ = make_problem()
    for method in ("exact", "darts"):
        grads = hypergradient(problem, method).upper
        assert flat(grads).abs().max() > 0
    with pytest.raises(ValueError, match="DARTS"):
        hypergradient(problem, "darts", steps=2)
    with pytest.raises(ValueError, match="'adjoint'"):
        hypergradient(problem, "adjoint")
    with pytest.raises(ValueError, match="require grad"):
        UnrolledProblem(
            problem.segmenter, problem.real_loss, problem.synthetic_loss, problem.validation_loss,
            upper=[torch.zeros(3)], lr=0.1,
        )


# --- GenSeg's upper-level variables that weigh the synthetic pairs (genseg.methods.upper) ---

PAIRS = 3
WEIGHT_LR = 1.0


def _pairs_data() -> tuple[tuple[Tensor, Tensor], tuple[Tensor, Tensor], tuple[Tensor, Tensor]]:
    rng = torch.Generator().manual_seed(3)
    return random_pairs(2, rng), random_pairs(PAIRS, rng), random_pairs(2, rng)


def _validation_after_an_sgd_step(weigh: Callable[[Tensor], Tensor]) -> float:
    """L_val after one plain torch.optim.SGD step on L_real + gamma * mean(weigh(l_syn per pair)):
    the reference, computed without genseg.mlo."""
    (images, masks), (synthetic, synthetic_masks), (val_images, val_masks) = _pairs_data()
    segmenter = copy.deepcopy(make_segmenter())
    optimizer = torch.optim.SGD([p for p in segmenter.parameters() if p.requires_grad], lr=WEIGHT_LR)
    per_pair = segmentation_loss(segmenter(synthetic), synthetic_masks, reduction="none")
    loss = segmentation_loss(segmenter(images), masks) + GAMMA * weigh(per_pair).mean()
    loss.backward()
    optimizer.step()
    with torch.no_grad():
        return segmentation_loss(segmenter(val_images), val_masks).item()


def _weighing_hypergradient(variable: Any) -> Tensor:
    """The variable's hypergradient through genseg.mlo, its weights in the synthetic loss."""
    (images, masks), (synthetic, synthetic_masks), (val_images, val_masks) = _pairs_data()
    problem = UnrolledProblem(
        segmenter=make_segmenter(),
        real_loss=lambda net: segmentation_loss(net(images), masks),
        synthetic_loss=lambda net: GAMMA * variable.weigh(
            segmentation_loss(net(synthetic), synthetic_masks, reduction="none")).mean(),
        validation_loss=lambda net: segmentation_loss(net(val_images), val_masks),
        upper=variable.tensors(PAIRS), lr=WEIGHT_LR)
    (analytic,) = hypergradient(problem, "exact", 1).upper
    return analytic.to(DTYPE).reshape(-1)


def test_pair_weights_hypergradient_matches_a_numerical_derivative() -> None:
    analytic, h = _weighing_hypergradient(PairWeights()), 1e-6
    numeric = torch.tensor([
        (_validation_after_an_sgd_step(lambda loss, i=i: loss * (1 + h * torch.eye(PAIRS, dtype=DTYPE)[i]))
         - _validation_after_an_sgd_step(lambda loss, i=i: loss * (1 - h * torch.eye(PAIRS, dtype=DTYPE)[i])))
        / (2 * h) for i in range(PAIRS)], dtype=DTYPE)
    assert numeric.abs().min() > 1e-7  # every pair really moves the validation loss
    torch.testing.assert_close(analytic, numeric, rtol=1e-3, atol=0.0)


def test_learned_gamma_hypergradient_matches_a_numerical_derivative() -> None:
    analytic, h = _weighing_hypergradient(LearnedGamma(lr=0.1)), 1e-6  # at log-scale s = 0
    numeric = (_validation_after_an_sgd_step(lambda loss: loss * math.exp(h))
               - _validation_after_an_sgd_step(lambda loss: loss * math.exp(-h))) / (2 * h)
    assert abs(numeric) > 1e-7
    torch.testing.assert_close(analytic, torch.tensor([numeric], dtype=DTYPE), rtol=1e-3, atol=0.0)


# --- the compositing generator's appearance (upper = generator on genseg.generators.composite) ---


def _square_pairs(count: int, rng: torch.Generator, side: int = 16) -> tuple[Tensor, Tensor]:
    """Textured float64 images with one bright 4 x 4 structure each, and their label maps."""
    images = 0.3 + 0.3 * torch.rand(count, 1, side, side, generator=rng, dtype=DTYPE)
    labels = torch.zeros(count, side, side, dtype=torch.long)
    for i in range(count):
        row, col = torch.randint(2, side - 6, (2,), generator=rng).tolist()
        labels[i, row:row + 4, col:col + 4] = 1
        images[i, :, row:row + 4, col:col + 4] += 0.3
    return images, labels


def test_hypergradient_through_a_composite_matches_a_numerical_derivative() -> None:
    """The validation loss's hypergradient w.r.t. the appearance parameters (feather, colour match,
    gain, bias), through the differentiable blend of real source and target pixels."""
    from genseg.config import GeneratorConfig
    from genseg.generators.composite import Compositor

    torch.manual_seed(0)
    compositor = Compositor(GeneratorConfig("composite", ndf=4, feather=1.5), 2, 1)
    compositor.network.to(DTYPE)
    with torch.no_grad():  # away from the initial values, where some derivatives vanish by symmetry
        compositor.network.match.fill_(0.3)
        compositor.network.log_gain.fill_(0.1)
        compositor.network.bias.fill_(0.05)
    rng = torch.Generator().manual_seed(4)
    images, labels = _square_pairs(4, rng)
    val_images, val_labels = _square_pairs(2, rng)
    draw = compositor.draw(images, labels, 3, rng)  # drawn once: the synthetic loss is a fixed function
    assert draw.inputs["footprint.0"].sum() > 0 and draw.inputs["shift.0"].abs().sum() > 0

    problem = UnrolledProblem(
        segmenter=make_segmenter(),
        real_loss=lambda net: segmentation_loss(net(images), labels),
        synthetic_loss=lambda net: GAMMA * segmentation_loss(net(compositor.render(draw)), draw.masks),
        validation_loss=lambda net: segmentation_loss(net(val_images), val_labels),
        upper=compositor.weight_parameters(),
        lr=1.0,
    )
    grads, *_ = hypergradient_exact(problem)
    numeric = numerical_hypergradient(problem, 1)
    assert numeric.abs().min() > 1e-7  # every appearance parameter really moves the validation loss
    torch.testing.assert_close(flat(grads), numeric, rtol=1e-3, atol=0.0)


# --- volumes: a 3D pix2pix generator's architecture variables, a 3D segmenter ---


def test_hypergradient_through_a_3d_generator_matches_a_numerical_derivative() -> None:
    """The exact hypergradient w.r.t. the cells' alpha of a (tiny) 3D pix2pix U-Net, through a 3D segmenter."""
    from genseg.generators.masks import encode_masks
    from genseg.generators.pix2pix import UNetGenerator

    torch.manual_seed(0)
    segmenter = nn.Sequential(nn.Conv3d(1, 3, 3, padding=1), nn.SiLU(), nn.Conv3d(3, 2, 1)).to(DTYPE)
    generator = UNetGenerator(1, 1, ngf=2, num_downs=2, dropout=0.0, spatial_dims=3).to(DTYPE)
    with torch.no_grad():  # away from the uniform mixture, where derivatives can cancel by symmetry
        for alpha in generator.arch_parameters():
            alpha.copy_(0.5 * torch.randn(alpha.shape, dtype=DTYPE))
    rng = torch.Generator().manual_seed(3)

    def pairs(count: int) -> tuple[Tensor, Tensor]:
        coarse = torch.rand(count, 1, 2, 2, 2, generator=rng, dtype=DTYPE) > 0.5
        masks = F.interpolate(coarse.to(DTYPE), size=(8, 8, 8), mode="nearest")
        return 0.6 * masks + 0.2 + 0.1 * torch.randn(masks.shape, generator=rng, dtype=DTYPE), masks[:, 0].long()

    (images, labels), (val_images, val_labels), (_, synthetic_labels) = pairs(2), pairs(2), pairs(2)
    encoded = encode_masks(synthetic_labels, 2).to(DTYPE)
    problem = UnrolledProblem(
        segmenter=segmenter,
        real_loss=lambda net: segmentation_loss(net(images), labels),
        synthetic_loss=lambda net: GAMMA * segmentation_loss(net((generator(encoded) + 1) / 2), synthetic_labels),
        validation_loss=lambda net: segmentation_loss(net(val_images), val_labels),
        upper=generator.arch_parameters(),
        lr=1.0,
    )
    grads, *_ = hypergradient_exact(problem)
    numeric = numerical_hypergradient(problem, 1)
    assert numeric.abs().min() > 1e-9  # every alpha really moves the validation loss
    torch.testing.assert_close(flat(grads), numeric, rtol=1e-3, atol=0.0)
