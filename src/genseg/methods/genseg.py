"""``genseg``: the end-to-end multi-level optimization of SPEC.md.

Per iteration (after the generator's pre-training on the budget's training pairs):

1. every ``mlo.every`` iterations, an upper-level step: the hypergradient of the validation loss
   of the one-step-unrolled segmenter (:mod:`genseg.mlo`) w.r.t. the upper-level variables,
   ``mlo.upper``: the generator's architecture weights A (``arch``), its weights (``generator``,
   added to their GAN gradient), ``both``, or ``none`` (the ablation: same schedule, no feedback);
2. a critic and a generator step of pix2pix on augmented training pairs (level 1);
3. a segmenter step on augmented real pairs plus freshly generated pairs (level 2).
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor

from genseg.losses import segmentation_loss
from genseg.methods.base import TrainingContext
from genseg.methods.separate import Separate
from genseg.mlo import Forward, UnrolledProblem, add_hypergradient, hypergradient


class GenSeg(Separate):
    """Separate's pairs, with the GAN kept training and the generator tuned by validation feedback."""

    name = "genseg"

    def __init__(self, context: TrainingContext) -> None:
        super().__init__(context)
        settings = context.config.mlo
        generator = self.synthesis.generator
        self.arch = list(generator.arch_parameters()) if settings.upper in ("arch", "both") else []
        self.weights = list(generator.weight_parameters()) if settings.upper in ("generator", "both") else []
        if settings.upper in ("arch", "both") and not self.arch:
            raise ValueError("mlo.upper needs the generator's architecture weights A, but the generator "
                             "is not searchable; set generator.searchable=True or mlo.upper='generator'")
        self.arch_optimizer = (torch.optim.Adam(self.arch, lr=settings.arch_lr, betas=(0.5, 0.999))
                               if self.arch else None)

    def step(self, iteration: int) -> dict[str, float]:
        images, masks = self.context.augmented_real_batch()
        synthetic_masks = self.context.augmented_masks()
        scalars: dict[str, float] = {}
        feedback = None
        if (self.arch or self.weights) and iteration % self.context.config.mlo.every == 0:
            feedback, scalars["upper_loss"] = self.upper_step(images, masks, synthetic_masks)
        scalars.update(self.synthesis.gan_step(*self.context.generator_batch(), feedback=feedback))
        self.synthesis.generator.train()
        with torch.no_grad():
            synthetic_images = self.synthesis.synthesize(synthetic_masks)
        scalars.update(self.context.segmenter_step(images, masks, synthetic=(synthetic_images, synthetic_masks)))
        return scalars

    def upper_step(self, images: Tensor, masks: Tensor, synthetic_masks: Tensor) -> tuple[list[Tensor] | None, float]:
        """Apply the hypergradient to A; return the part for the generator's weights (if any)."""
        context, settings = self.context, self.context.config.mlo
        problem = UnrolledProblem(
            segmenter=context.segmenter,
            real_loss=lambda forward: segmentation_loss(forward(images), masks),
            synthetic_loss=self._synthetic_loss(synthetic_masks),
            validation_loss=lambda forward: context.validation.loss(forward(context.validation.images)),
            upper=self.arch + self.weights,
            lr=context.config.train.lr,
        )
        context.segmenter.train()
        grads, validation_loss = hypergradient(problem, settings.hypergradient, settings.unroll_steps)
        if self.arch_optimizer is not None:
            self.arch_optimizer.zero_grad(set_to_none=True)
            add_hypergradient(self.arch, grads[: len(self.arch)])
            self.arch_optimizer.step()
        return (grads[len(self.arch):] if self.weights else None), float(validation_loss)

    def _synthetic_loss(self, synthetic_masks: Tensor) -> Any:
        """gamma * L_syn as a fixed function: dropout draws the same masks on every call."""
        context = self.context
        seed = int(torch.randint(2**31 - 1, (1,), generator=context.rng))
        devices = [context.device] if context.device.type == "cuda" else []

        def loss(forward: Forward) -> Tensor:
            with torch.random.fork_rng(devices=devices):
                torch.manual_seed(seed)
                self.synthesis.generator.train()
                synthetic = self.synthesis.synthesize(synthetic_masks)
            return context.config.mlo.gamma * segmentation_loss(forward(synthetic), synthetic_masks)

        return loss

    def state_dict(self) -> dict[str, Any]:
        state = super().state_dict()
        if self.arch_optimizer is not None:
            state["arch_optimizer"] = self.arch_optimizer.state_dict()
        return state

    def load_state_dict(self, state: dict[str, Any]) -> None:
        super().load_state_dict(state)
        if self.arch_optimizer is not None:
            self.arch_optimizer.load_state_dict(state["arch_optimizer"])
