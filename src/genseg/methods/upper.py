"""GenSeg's upper-level variables: what the validation loss's hypergradient moves.

Each variable is one small object behind :class:`UpperVariable`: its tensors (what
:func:`genseg.mlo.hypergradient` differentiates with respect to), what it does with its part of
the hypergradient, an optional hook into the generator's GAN step, and its state for checkpoints.
:meth:`genseg.methods.genseg.GenSeg.step` loops over a list of them, so a new variable is one
class and one :data:`UPPER_VARIABLES` entry.

``mlo.upper`` names them: ``arch`` (the architecture weights A, the paper's choice),
``generator`` (all generator weights), several joined by ``+`` (``arch+generator``; ``both`` is
that), or ``none`` (the ablation: the same schedule without feedback).
"""

from __future__ import annotations

from typing import Any, Protocol

import torch
from torch import Tensor, nn

from genseg.config import MLOConfig
from genseg.mlo import add_hypergradient


class UpperVariable(Protocol):
    """One upper-level variable of the multi-level optimization."""

    name: str

    def tensors(self) -> list[Tensor]:
        """The tensors the hypergradient is taken with respect to (they require grad)."""

    def apply(self, grads: list[Tensor]) -> None:
        """Take its part of the hypergradient, one gradient per tensor."""

    def before_generator_step(self) -> None:
        """Called inside the GAN step, after the generator's backward pass and before its step."""

    def state_dict(self) -> dict[str, Any]: ...

    def load_state_dict(self, state: dict[str, Any]) -> None: ...


class ArchitectureWeights:
    """The generator's architecture weights A, moved by their own Adam (SPEC.md's upper level).

    Args:
        generator: a searchable generator (``arch_parameters()``).
        lr: Adam's learning rate.
    """

    name = "arch"

    def __init__(self, generator: nn.Module, lr: float) -> None:
        self.arch = list(generator.arch_parameters())
        if not self.arch:
            raise ValueError("mlo.upper needs the generator's architecture weights A, but the generator "
                             "is not searchable; set generator.searchable=True or mlo.upper='generator'")
        self.optimizer = torch.optim.Adam(self.arch, lr=lr, betas=(0.5, 0.999))

    def tensors(self) -> list[Tensor]:
        return self.arch

    def apply(self, grads: list[Tensor]) -> None:
        self.optimizer.zero_grad(set_to_none=True)
        add_hypergradient(self.arch, grads)
        self.optimizer.step()

    def before_generator_step(self) -> None:
        """A has its own optimizer; the GAN step does not move it."""

    def state_dict(self) -> dict[str, Any]:
        return {"optimizer": self.optimizer.state_dict()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.optimizer.load_state_dict(state["optimizer"])


class GeneratorWeights:
    """All generator weights: their hypergradient joins their GAN gradient in the generator's step.

    Args:
        generator: the generator (``weight_parameters()``).
        relative: the hypergradient's size as a share of the GAN gradient's norm (see
            :func:`feedback_scale`).
    """

    name = "generator"

    def __init__(self, generator: nn.Module, relative: float) -> None:
        self.weights = list(generator.weight_parameters())
        self.relative = relative
        self.pending: list[Tensor] | None = None

    def tensors(self) -> list[Tensor]:
        return self.weights

    def apply(self, grads: list[Tensor]) -> None:
        self.pending = grads  # added in the next GAN step, scaled to its gradient

    def before_generator_step(self) -> None:
        if self.pending is not None:
            add_hypergradient(self.weights, self.pending, weight=feedback_scale(self.weights, self.pending,
                                                                                 self.relative))
            self.pending = None

    def state_dict(self) -> dict[str, Any]:
        return {}  # the pending hypergradient is used within the iteration that computed it

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Nothing to restore."""


def feedback_scale(params: list[Tensor], feedback: list[Tensor], relative: float) -> float:
    """The factor that gives the hypergradient ``relative`` times the norm of the params' gradient.

    The raw hypergradient is eta times a second-order term, orders of magnitude below the pix2pix
    gradient (lambda_L1 = 100): added as it is, Adam would never notice it and the generator would
    not move (SPEC.md's first measurement). Scaling it to a fixed share of the GAN gradient makes
    ``mlo.generator_feedback`` mean the same on every data set.
    """
    gan_norm = torch.sqrt(sum((p.grad.detach() ** 2).sum() for p in params if p.grad is not None))
    feedback_norm = torch.sqrt(sum((g.detach() ** 2).sum() for g in feedback))
    return float(relative * gan_norm / feedback_norm) if feedback_norm > 0 else 0.0


UPPER_VARIABLES = {
    "arch": lambda generator, settings: ArchitectureWeights(generator, settings.arch_lr),
    "generator": lambda generator, settings: GeneratorWeights(generator, settings.generator_feedback),
}


def upper_variables(generator: nn.Module, settings: MLOConfig) -> list[UpperVariable]:
    """The variables ``settings.upper`` names, in that order (none for ``"none"``)."""
    return [UPPER_VARIABLES[name](generator, settings) for name in settings.upper_names]
