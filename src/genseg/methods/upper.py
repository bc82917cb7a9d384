"""GenSeg's upper-level variables: what the validation loss's hypergradient moves.

Each variable is one small object behind :class:`UpperVariable`: its tensors for this upper step
(what :func:`genseg.mlo.hypergradient` differentiates with respect to), how it weighs the
synthetic pairs' losses, what it does with its part of the hypergradient, the weights it gives
the synthetic pairs in the segmenter's own step, a hook into the generator's own training step,
and its state for checkpoints. :meth:`genseg.methods.genseg.GenSeg.step` loops over a list of them, so a
new variable is one class (with a ``from_settings`` constructor) and one line of
:data:`genseg.plugins.UPPER_VARIABLES`.

``method.upper`` names them: ``arch`` (the architecture weights A, the paper's choice),
``generator`` (all generator weights), ``pairs`` (a weight per synthetic pair, learning to
reweight), ``gamma`` (the synthetic loss's weight, learned), several joined by ``+``
(``arch+generator``; ``both`` is that), or ``none`` (the ablation: the same schedule without
feedback).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Protocol

import torch
from torch import Tensor, nn

from genseg.errors import ConfigError
from genseg.generators.base import MaskToImage
from genseg.mlo import add_hypergradient
from genseg.plugins import UPPER_VARIABLES

if TYPE_CHECKING:
    from genseg.methods.options import GenSegOptions


class UpperVariable(Protocol):
    """One upper-level variable of the multi-level optimization."""

    name: str

    def tensors(self, pairs: int) -> list[Tensor]:
        """The tensors the hypergradient is taken with respect to this step (they require grad).

        Args:
            pairs: synthetic pairs in this step's batch.
        """

    def weigh(self, losses: Tensor) -> Tensor:
        """The synthetic pairs' per-pair losses (pairs,) as the unrolled step sees them."""

    def apply(self, grads: list[Tensor]) -> None:
        """Take its part of the hypergradient, one gradient per tensor."""

    def step_weights(self) -> Tensor | None:
        """Weights of the synthetic pairs in the segmenter's next step; None leaves them at 1 (and
        an upper step then reuses the unroll's gradient)."""

    def before_generator_step(self) -> None:
        """Called inside the generator's training step, after its backward pass and before its
        optimizer step (:meth:`~genseg.generators.base.MaskToImage.train_step`)."""

    def state_dict(self) -> dict[str, Any]: ...

    def load_state_dict(self, state: dict[str, Any]) -> None: ...


class ArchitectureWeights:
    """The generator's architecture weights A, moved by their own Adam (docs/method.md's upper level).

    Args:
        generator: a generator with architecture weights (pix2pix with searchable cells).
        lr: Adam's learning rate.
    """

    name = "arch"

    @classmethod
    def from_settings(cls, generator: MaskToImage, settings: GenSegOptions) -> ArchitectureWeights:
        """The variable a run's ``mlo`` settings describe."""
        return cls(generator, settings.arch_lr)

    def __init__(self, generator: MaskToImage, lr: float) -> None:
        self.arch = list(generator.arch_parameters())
        if not self.arch:
            raise ConfigError("method.upper needs the generator's architecture weights A, but the generator has "
                             "none; use pix2pix with generator.searchable=True, or method.upper='generator'")
        self.optimizer = torch.optim.Adam(self.arch, lr=lr, betas=(0.5, 0.999))

    def tensors(self, pairs: int) -> list[Tensor]:
        return self.arch

    def weigh(self, losses: Tensor) -> Tensor:
        return losses

    def apply(self, grads: list[Tensor]) -> None:
        self.optimizer.zero_grad(set_to_none=True)
        add_hypergradient(self.arch, grads)
        self.optimizer.step()

    def step_weights(self) -> Tensor | None:
        return None

    def before_generator_step(self) -> None:
        """A has its own optimizer; the generator's training step does not move it."""

    def state_dict(self) -> dict[str, Any]:
        return {"optimizer": self.optimizer.state_dict()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.optimizer.load_state_dict(state["optimizer"])


class GeneratorWeights:
    """All generator weights: their hypergradient joins the gradient of the generator's own loss in its step.

    Args:
        generator: the generator (``weight_parameters()``).
        relative: the hypergradient's size as a share of the norm of that gradient (see
            :func:`feedback_scale`).
    """

    name = "generator"

    @classmethod
    def from_settings(cls, generator: MaskToImage, settings: GenSegOptions) -> GeneratorWeights:
        """The variable a run's ``mlo`` settings describe."""
        return cls(generator, settings.generator_feedback)

    def __init__(self, generator: MaskToImage, relative: float) -> None:
        self.weights = list(generator.weight_parameters())
        self.relative = relative
        self.pending: list[Tensor] | None = None

    def tensors(self, pairs: int) -> list[Tensor]:
        return self.weights

    def weigh(self, losses: Tensor) -> Tensor:
        return losses

    def apply(self, grads: list[Tensor]) -> None:
        self.pending = grads  # added in the generator's next training step, scaled to its gradient

    def step_weights(self) -> Tensor | None:
        return None

    def before_generator_step(self) -> None:
        if self.pending is not None:
            add_hypergradient(self.weights, self.pending, weight=feedback_scale(self.weights, self.pending,
                                                                                 self.relative))
            self.pending = None

    def state_dict(self) -> dict[str, Any]:
        return {}  # the pending hypergradient is used within the iteration that computed it

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Nothing to restore."""


class PairWeights:
    """A weight per synthetic pair from the one-step look-ahead (learning to reweight, Ren et al. 2018).

    The unrolled step weighs pair i's loss by ``1 + eps_i`` at ``eps = 0``; the hypergradient
    ``g_i = d L_val / d eps_i`` says whether a little more of pair i would lower the validation
    loss (g_i < 0) or raise it. The segmenter's own step then weighs the pairs by ``max(-g_i, 0)``,
    normalized to a mean of 1: pairs that would hurt stop counting, and if every pair would, the
    step takes none. Fresh every upper step; no persistent variables, the same Hessian-vector
    product as the other variables.

    With ``candidates`` > 1 the weights select instead (``method.candidates``): the upper step sees
    that many times the synthetic batch, and the segmenter steps on the best synthetic batch's
    worth of them, each at weight 1, of those that would lower the validation loss.

    Args:
        candidates: pairs drawn per pair kept.
    """

    name = "pairs"

    @classmethod
    def from_settings(cls, generator: MaskToImage, settings: GenSegOptions) -> PairWeights:
        """The variable a run's ``mlo`` settings describe."""
        return cls(settings.candidates)

    def __init__(self, candidates: int = 1) -> None:
        self.candidates = candidates
        self.eps: Tensor | None = None
        self.weights: Tensor | None = None

    def tensors(self, pairs: int) -> list[Tensor]:
        self.eps = torch.zeros(pairs, requires_grad=True)
        self.weights = None
        return [self.eps]

    def weigh(self, losses: Tensor) -> Tensor:
        assert self.eps is not None, "tensors() first: it draws this step's eps"
        return losses * (1 + self.eps.to(losses))

    def apply(self, grads: list[Tensor]) -> None:
        if self.candidates == 1:
            self.weights = pair_weights(grads[0])
        else:
            self.weights = selected_pairs(grads[0], grads[0].numel() // self.candidates)

    def step_weights(self) -> Tensor | None:
        weights, self.weights = self.weights, None  # they name this step's pairs: used once
        return weights

    def before_generator_step(self) -> None:
        """The generator's step is not weighted."""

    def state_dict(self) -> dict[str, Any]:
        return {}  # weights are made and used within one iteration

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Nothing to restore."""


class LearnedGamma:
    """The synthetic loss's weight, ``method.gamma * exp(s)``: s learned by Adam from its hypergradient.

    Positive by construction; it weighs the synthetic pairs in every segmenter step, not only in
    the unrolled one.

    Args:
        lr: Adam's learning rate for s.
    """

    name = "gamma"

    @classmethod
    def from_settings(cls, generator: MaskToImage, settings: GenSegOptions) -> LearnedGamma:
        """The variable a run's ``mlo`` settings describe."""
        return cls(settings.arch_lr)

    def __init__(self, lr: float) -> None:
        self.log_scale = nn.Parameter(torch.zeros(1))
        self.optimizer = torch.optim.Adam([self.log_scale], lr=lr, betas=(0.5, 0.999))

    def tensors(self, pairs: int) -> list[Tensor]:
        return [self.log_scale]

    def weigh(self, losses: Tensor) -> Tensor:
        return losses * torch.exp(self.log_scale).to(losses)

    def apply(self, grads: list[Tensor]) -> None:
        self.optimizer.zero_grad(set_to_none=True)
        add_hypergradient([self.log_scale], grads)
        self.optimizer.step()

    def step_weights(self) -> Tensor | None:
        return torch.exp(self.log_scale.detach())

    def before_generator_step(self) -> None:
        """The generator's step is not weighted."""

    def state_dict(self) -> dict[str, Any]:
        return {"log_scale": self.log_scale.detach().clone(), "optimizer": self.optimizer.state_dict()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        with torch.no_grad():
            self.log_scale.copy_(state["log_scale"])
        self.optimizer.load_state_dict(state["optimizer"])


def pair_weights(hypergradient: Tensor) -> Tensor:
    """``max(-g, 0)`` normalized to a mean of 1; all zeros when no pair would help."""
    weights = torch.clamp(-hypergradient.detach(), min=0)
    total = weights.sum()
    return weights * (weights.numel() / total) if total > 0 else weights


def selected_pairs(hypergradient: Tensor, keep: int) -> Tensor:
    """1 for the ``keep`` pairs whose look-ahead lowers the validation loss most (g < 0), 0 for the rest."""
    g = hypergradient.detach()
    chosen = torch.argsort(g)[:keep]
    weights = torch.zeros_like(g)
    weights[chosen[g[chosen] < 0]] = 1.0
    return weights


def feedback_scale(params: list[Tensor], feedback: list[Tensor], relative: float) -> float:
    """The factor that gives the hypergradient ``relative`` times the norm of the params' gradient.

    The raw hypergradient is eta times a second-order term, orders of magnitude below the pix2pix
    gradient (lambda_L1 = 100): added as it is, Adam would never notice it and the generator would
    not move (docs/benchmarks.md). Scaling it to a fixed share of the gradient of the
    generator's own loss makes ``method.generator_feedback`` mean the same on every data set.
    """
    own_norm = torch.sqrt(sum((p.grad.detach() ** 2).sum() for p in params if p.grad is not None))
    feedback_norm = torch.sqrt(sum((g.detach() ** 2).sum() for g in feedback))
    return float(relative * own_norm / feedback_norm) if feedback_norm > 0 else 0.0


def upper_variables(generator: MaskToImage, settings: GenSegOptions) -> list[UpperVariable]:
    """The variables ``settings.upper`` names (:data:`genseg.plugins.UPPER_VARIABLES`), in that order
    (none for ``"none"``)."""
    auto = settings.upper == "auto"  # the only setting whose variables depend on the generator
    names = settings.upper_names(has_architecture=auto and bool(list(generator.arch_parameters())))
    return [UPPER_VARIABLES.load(name).from_settings(generator, settings) for name in names]
