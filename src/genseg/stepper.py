"""The segmenter's step: the network, its optimizer, and one step on L_real (+ gamma * L_syn + a term).

Real pairs, synthetic pairs and a method's own term (mean teacher's consistency on unlabeled
images) go through the segmenter in separate passes, as GenSeg's unroll evaluates them
(:mod:`genseg.mlo`): with batch norm, the real pairs of every step of every method then see the
same batch statistics, and GenSeg's reused gradient is this step's gradient.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor, nn

from genseg.losses import segmentation_loss

ExtraLoss = Callable[[nn.Module], tuple[Tensor, dict[str, float]]]
"""A method's own loss term, given the segmenter: the weighted term and the scalars to log."""


@dataclass
class SegmenterStepper:
    """The segmenter being trained and the optimizer step every method takes on it.

    Args:
        segmenter: the model being trained.
        optimizer: its optimizer.
        gamma: the weight of the synthetic pairs' loss (``method.gamma``).
    """

    segmenter: nn.Module
    optimizer: torch.optim.Optimizer
    gamma: float = 1.0

    def step(self, images: Tensor, masks: Tensor, synthetic: tuple[Tensor, Tensor] | None = None,
             synthetic_weights: Tensor | None = None, extra: ExtraLoss | None = None) -> dict[str, float]:
        """One optimizer step on L_real, plus gamma * L_syn if ``synthetic`` pairs are given, plus
        the ``extra`` term if given.

        Args:
            synthetic_weights: a weight per synthetic pair (GenSeg's ``pairs`` upper level);
                default 1 each.
            extra: a method's own term, computed in its own pass through the segmenter.

        Returns:
            ``loss``; with synthetic pairs or an extra term also ``loss_real``, with synthetic pairs
            ``loss_synthetic`` (unweighted by gamma), and the extra term's scalars.
        """
        self.segmenter.train()
        self.optimizer.zero_grad(set_to_none=True)
        real_loss = segmentation_loss(self.segmenter(images), masks)
        loss, scalars = real_loss, {}
        if synthetic is not None:
            per_pair = segmentation_loss(self.segmenter(synthetic[0]), synthetic[1], reduction="none")
            weighted = per_pair if synthetic_weights is None else per_pair * synthetic_weights.to(per_pair)
            synthetic_loss = weighted.mean()
            loss = loss + self.gamma * synthetic_loss
            scalars["loss_synthetic"] = synthetic_loss.item()
        if extra is not None:
            term, extra_scalars = extra(self.segmenter)
            loss = loss + term
            scalars.update(extra_scalars)
        loss.backward()
        self.optimizer.step()
        if not scalars:
            return {"loss": loss.item()}
        return {"loss": loss.item(), "loss_real": real_loss.item(), **scalars}

    def step_with(self, grads: list[Tensor]) -> None:
        """One optimizer step with detached gradients computed elsewhere (one per trainable parameter, in order)."""
        params = [p for p in self.segmenter.parameters() if p.requires_grad]
        for param, grad in zip(params, grads, strict=True):
            param.grad = grad  # the caller's fresh tensors: no copy on the training step
        self.optimizer.step()

    def state_dict(self) -> dict[str, Any]:
        """The segmenter's and the optimizer's state (``last.pt``'s ``segmenter`` and ``optimizer`` entries)."""
        return {"segmenter": self.segmenter.state_dict(), "optimizer": self.optimizer.state_dict()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.segmenter.load_state_dict(state["segmenter"])
        self.optimizer.load_state_dict(state["optimizer"])
