"""The multi-level optimization's hypergradient: how the upper level learns from validation.

GenSeg (docs/method.md, "The three levels") nests three problems. With G the generator (weights W,
upper-level variables A), S_theta the segmenter, T the mask augmentation and gamma the weight of
the synthetic pairs:

1. generator level:    W*(A) = argmin_W  L_pix2pix(W, A; D_tr)
2. segmentation level: theta*(A) = argmin_theta  L_train(theta, A),
                       L_train = L_real(theta) + gamma * L_syn(theta, A),
                       L_syn = L_seg(S_theta(x~), y~),  y~ = T(y),  x~ = post(G_A(y~))
3. validation level:   min_A  L_val(theta*(A)) = L_seg(S_theta*(x), y) over D_val

Level 3 replaces theta*(A) by k virtual SGD steps of the segmenter (the unroll):

    theta_0 = theta,  theta_{i+1} = theta_i - eta * grad_theta L_train(theta_i, A),
    g_A = d L_val(theta_k) / d A.

Two estimators are implemented:

- exact (:func:`hypergradient_exact`): second-order autograd through the unroll, the segmenter
  evaluated at substituted parameters with :func:`torch.func.functional_call`. For k = 1 only the
  synthetic term depends on A, so with v = grad_theta' L_val(theta'):

      g_A = -eta * d/dA [ grad_theta (gamma L_syn)(theta, A) . v ],

  one Hessian-vector product that needs a double-backward graph of the synthetic term only;
  the real term's gradient is taken without one. For k > 1 the whole unroll keeps its graph.
- DARTS (:func:`hypergradient_darts`): the same k = 1 mixed second derivative by central
  finite differences, first-order autograd only:

      g_A ~ -eta * [grad_A (gamma L_syn)(theta + eps v, A)
                    - grad_A (gamma L_syn)(theta - eps v, A)] / (2 eps),    eps = 0.01 / ||v||.

The authors' released code never performs level 3: its synthetic image is detached and quantized
to uint8 before the segmenter sees it, so no gradient can reach A, and its "architecture" optimizer
ends up training the segmenter on the validation images. Here the synthetic loss is a closure that
runs the generator inside, so A -> x~ -> theta' -> L_val stays one differentiable graph.

The segmenter's trainable parameters are substituted; its frozen parameters and buffers are passed
through unchanged (buffers as copies, so virtual steps do not move BatchNorm running statistics).
BatchNorm in train mode makes every loss depend on the batch it sees (the hypergradient is exact for
those batch-dependent closures, not for a per-sample loss); the numerical tests use a norm-free net.

Conventions: the virtual step is plain SGD with eta (the DARTS choice) whatever optimizer trains the
segmenter; the generator's weights W are held fixed during the unroll, so the optional path
A -> W*(A) of docs/method.md is not differentiated (make W part of the upper level to train it by feedback).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import NamedTuple

import torch
from torch import Tensor, nn
from torch.func import functional_call

from genseg.plugins import HYPERGRADIENTS

Forward = Callable[..., Tensor]
"""The segmenter evaluated at substituted parameters: ``forward(images) -> logits``."""

SegmenterLoss = Callable[[Forward], Tensor]
"""A scalar loss of the segmenter, computed with the forward function it is given."""


@dataclass
class UnrolledProblem:
    """Levels 2 and 3 as closures, so this module knows nothing of generators or data.

    Every loss must be a fixed function of the segmenter's parameters (and of A): draw its batch,
    augmentation and noise once, before building the problem, and run the generator in a fixed
    mode (dropout off or its mask fixed), since each estimator calls the losses several times.

    Args:
        segmenter: the lower-level model; its own parameters are never modified.
        real_loss: ``L_real``, the loss on real training pairs (independent of A).
        synthetic_loss: ``gamma * L_syn``; generates the synthetic images inside, from the
            upper-level variables, so that A is in its graph.
        validation_loss: ``L_val``, the loss on the validation pairs.
        upper: the upper-level variables A (tensors that require grad).
        lr: eta, the learning rate of the virtual SGD step(s).

    Example:
        >>> problem = UnrolledProblem(
        ...     segmenter=model,
        ...     real_loss=lambda net: segmentation_loss(net(x), y),
        ...     synthetic_loss=lambda net: gamma * segmentation_loss(net(post(generator(y_syn))), y_syn),
        ...     validation_loss=lambda net: segmentation_loss(net(x_val), y_val),
        ...     upper=list(generator.architecture_parameters()),
        ...     lr=1e-3,
        ... )
        >>> result = hypergradient_exact(problem)  # result.upper: g_A
    """

    segmenter: nn.Module
    real_loss: SegmenterLoss
    synthetic_loss: SegmenterLoss
    validation_loss: SegmenterLoss
    upper: list[Tensor]
    lr: float

    def __post_init__(self) -> None:
        self.upper = list(self.upper)
        if not self.upper:
            raise ValueError("UnrolledProblem.upper is empty: pass the upper-level variables A")
        if not all(a.requires_grad for a in self.upper):
            raise ValueError("every upper-level variable must require grad (use nn.Parameter)")
        if not any(p.requires_grad for p in self.segmenter.parameters()):
            raise ValueError("the segmenter has no trainable parameters to unroll")
        if self.lr <= 0:
            raise ValueError(f"the virtual step's lr must be > 0, got {self.lr}")


class Hypergradient(NamedTuple):
    """What one upper-level evaluation computes, all detached.

    ``train_grads`` is ``grad_theta L_train(theta, A)`` at the segmenter's current parameters, on
    the same batch: the gradient of the segmenter's own (level 2) step, which can reuse it instead
    of a second forward and backward pass.
    """

    upper: list[Tensor]
    """g_A, one gradient per upper-level variable."""
    validation_loss: Tensor
    """L_val(theta_k)."""
    train_grads: list[Tensor]
    """grad_theta L_train(theta, A), one per trainable segmenter parameter (in ``parameters()`` order)."""
    real_loss: Tensor
    """L_real(theta)."""
    synthetic_loss: Tensor
    """gamma * L_syn(theta, A)."""


def hypergradient(problem: UnrolledProblem, method: str = "exact", steps: int = 1) -> Hypergradient:
    """The hypergradient by the estimator named in ``GenSegOptions.hypergradient``.

    Args:
        problem: the unrolled problem.
        method: a registered estimator (:data:`genseg.plugins.HYPERGRADIENTS`): ``"exact"`` or ``"darts"``.
        steps: virtual segmenter steps unrolled (DARTS supports 1 only).

    Returns:
        g_A, L_val(theta_k) and the lower level's gradient at theta (see :class:`Hypergradient`).
    """
    return HYPERGRADIENTS.load(method)(problem, steps)


def unrolled_validation_loss(problem: UnrolledProblem, steps: int = 1) -> Tensor:
    """``L_val(theta_k(A))`` after ``steps`` virtual SGD steps, differentiable w.r.t. A.

    Args:
        problem: the unrolled problem.
        steps: virtual segmenter steps.

    Returns:
        The validation loss with its graph back to the upper-level variables.
    """
    return _unroll(problem, steps)[0]


def _unroll(problem: UnrolledProblem, steps: int) -> tuple[Tensor, list[Tensor], Tensor, Tensor]:
    """(L_val(theta_k) with its graph; the first step's gradient, real and synthetic loss, detached)."""
    if steps < 1:
        raise ValueError(f"steps must be >= 1, got {steps}")
    theta, fixed = _segmenter_state(problem.segmenter)
    first: tuple[list[Tensor], Tensor, Tensor] | None = None
    for _ in range(steps):
        forward = _evaluate_at(problem.segmenter, theta, fixed)
        real, synthetic = problem.real_loss(forward), problem.synthetic_loss(forward)
        grads = _grad(real + synthetic, list(theta.values()), create_graph=True)
        first = first or ([g.detach() for g in grads], real.detach(), synthetic.detach())
        theta = {name: p - problem.lr * g for (name, p), g in zip(theta.items(), grads)}
    assert first is not None
    return problem.validation_loss(_evaluate_at(problem.segmenter, theta, fixed)), *first


def hypergradient_exact(problem: UnrolledProblem, steps: int = 1) -> Hypergradient:
    """The exact hypergradient ``d L_val(theta_k) / d A`` by second-order autograd.

    One step uses the Hessian-vector product of the module docstring; more steps differentiate
    :func:`unrolled_validation_loss` through the whole unroll.

    Args:
        problem: the unrolled problem.
        steps: virtual segmenter steps.

    Returns:
        g_A, L_val(theta_k) and the lower level's gradient at theta (see :class:`Hypergradient`).
    """
    if steps != 1:
        val_loss, train_grads, real, synthetic = _unroll(problem, steps)
        return Hypergradient(_grad(val_loss, problem.upper), val_loss.detach(), train_grads, real, synthetic)
    theta, fixed = _segmenter_state(problem.segmenter)
    params = list(theta.values())
    forward = _evaluate_at(problem.segmenter, theta, fixed)
    real, synthetic = problem.real_loss(forward), problem.synthetic_loss(forward)
    real_grads = _grad(real, params)
    synthetic_grads = _grad(synthetic, params, create_graph=True)
    train_grads = [r + s.detach() for r, s in zip(real_grads, synthetic_grads)]
    val_loss, v = _validation_after_step(problem, theta, fixed, train_grads)
    coupling = sum((s * vi).sum() for s, vi in zip(synthetic_grads, v))
    grads = _grad(coupling, problem.upper)
    return Hypergradient([-problem.lr * g for g in grads], val_loss, train_grads, real.detach(), synthetic.detach())


def hypergradient_darts(problem: UnrolledProblem, steps: int = 1, eps_scale: float = 0.01) -> Hypergradient:
    """The one-step hypergradient by DARTS central finite differences (first-order autograd only).

    Args:
        problem: the unrolled problem.
        steps: virtual segmenter steps; DARTS unrolls one.
        eps_scale: the finite-difference step is ``eps_scale / ||v||``.

    Returns:
        g_A, L_val(theta') and the lower level's gradient at theta (see :class:`Hypergradient`).
    """
    if steps != 1:
        raise ValueError(f"the DARTS hypergradient unrolls one step, got unroll_steps={steps}: use 1 or 'exact'")
    theta, fixed = _segmenter_state(problem.segmenter)
    forward = _evaluate_at(problem.segmenter, theta, fixed)
    real, synthetic = problem.real_loss(forward), problem.synthetic_loss(forward)
    train_grads = _grad(real + synthetic, list(theta.values()))
    val_loss, v = _validation_after_step(problem, theta, fixed, train_grads)
    lower = (train_grads, real.detach(), synthetic.detach())
    norm = torch.linalg.vector_norm(torch.stack([torch.linalg.vector_norm(vi) for vi in v]))
    if norm == 0:  # theta' is stationary for L_val: the exact hypergradient is zero too
        return Hypergradient([torch.zeros_like(a) for a in problem.upper], val_loss, *lower)
    eps = eps_scale / norm

    def synthetic_grad_at(sign: float) -> list[Tensor]:
        shifted = {name: p.detach() + sign * eps * vi for (name, p), vi in zip(theta.items(), v)}
        return _grad(problem.synthetic_loss(_evaluate_at(problem.segmenter, shifted, fixed)), problem.upper)

    plus, minus = synthetic_grad_at(1.0), synthetic_grad_at(-1.0)
    return Hypergradient([-problem.lr * (gp - gm) / (2 * eps) for gp, gm in zip(plus, minus)], val_loss, *lower)


def add_hypergradient(params: Sequence[Tensor], grads: Sequence[Tensor], weight: float = 1.0) -> None:
    """Add ``weight * g`` to each parameter's ``.grad`` (setting it where there is none).

    An upper step on A alone is ``optimizer.zero_grad(); add_hypergradient(A, g); optimizer.step()``.
    When the upper-level variables are generator weights that also got their GAN gradient from
    ``backward()``, call it before the generator's step (genseg scales the weight to a share of the GAN gradient).

    Args:
        params: the upper-level variables.
        grads: their hypergradients, in the same order.
        weight: the hypergradient's weight.
    """
    with torch.no_grad():
        for p, g in zip(params, grads, strict=True):
            if p.grad is None:
                p.grad = weight * g.detach()
            else:
                p.grad.add_(g, alpha=weight)


def _segmenter_state(segmenter: nn.Module) -> tuple[dict[str, Tensor], dict[str, Tensor]]:
    """(trainable parameters as fresh autograd leaves, frozen parameters and copied buffers)."""
    theta = {n: p.detach().requires_grad_() for n, p in segmenter.named_parameters() if p.requires_grad}
    fixed = {n: p.detach() for n, p in segmenter.named_parameters() if not p.requires_grad}
    fixed.update({n: b.clone() for n, b in segmenter.named_buffers()})
    return theta, fixed


def _evaluate_at(segmenter: nn.Module, theta: dict[str, Tensor], fixed: dict[str, Tensor]) -> Forward:
    state = {**fixed, **theta}

    def forward(*args: object, **kwargs: object) -> Tensor:
        return functional_call(segmenter, state, args, kwargs)

    return forward


def _validation_after_step(
    problem: UnrolledProblem, theta: dict[str, Tensor], fixed: dict[str, Tensor], train_grads: list[Tensor]
) -> tuple[Tensor, list[Tensor]]:
    """(L_val(theta'), detached; v = grad L_val(theta')) at theta' = theta - eta * train_grads."""
    stepped = {
        name: (p - problem.lr * g).detach().requires_grad_() for (name, p), g in zip(theta.items(), train_grads)
    }
    val_loss = problem.validation_loss(_evaluate_at(problem.segmenter, stepped, fixed))
    return val_loss.detach(), _grad(val_loss, list(stepped.values()))


def _grad(output: Tensor, inputs: list[Tensor], create_graph: bool = False) -> list[Tensor]:
    """Gradients with zeros for inputs the output does not depend on."""
    grads = torch.autograd.grad(
        output, inputs, create_graph=create_graph, allow_unused=True, materialize_grads=True
    )
    return list(grads)
