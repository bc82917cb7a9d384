"""``genseg``: the end-to-end multi-level optimization of SPEC.md.

After the generator's pre-training on the budget's training pairs, every iteration takes a
segmenter step on augmented real pairs plus freshly generated pairs (level 2). Every ``mlo.every``
iterations the generator's side moves too:

1. an upper-level step: the hypergradient of the validation loss of the one-step-unrolled
   segmenter (:mod:`genseg.mlo`) w.r.t. the upper-level variables ``mlo.upper`` names
   (:mod:`genseg.methods.upper`: the generator's architecture weights A, its weights, or
   ``none``, the ablation: same schedule, no feedback), each taking its part;
2. a critic and a generator step of pix2pix on augmented training pairs (level 1).

On those iterations the segmenter's step reuses the gradient the unroll already computed at the
current parameters, on the same real and synthetic batch (:class:`genseg.mlo.Hypergradient`),
instead of a second forward and backward pass. The unroll passes real and synthetic halves
through the network apart, as every segmenter step does, so the default batch-norm UNet sees the
same per-half statistics on every step. Unlike a plain step, an unrolled one leaves the
batch-norm running statistics as they were (the unroll works on copies of the buffers).
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor

from genseg.losses import segmentation_loss
from genseg.methods.base import TrainingContext
from genseg.methods.separate import Separate
from genseg.methods.upper import upper_variables
from genseg.mlo import Forward, Hypergradient, UnrolledProblem, hypergradient


class GenSeg(Separate):
    """Separate's pairs, with the GAN kept training and the generator tuned by validation feedback."""

    name = "genseg"
    needs_generator = True

    def __init__(self, context: TrainingContext) -> None:
        super().__init__(context)
        self.upper = upper_variables(self.synthesis.generator, context.config.mlo)

    def step(self, iteration: int) -> dict[str, float]:
        images, masks = self.context.augmented_real_batch()
        synthetic_masks = self.context.augmented_masks()
        if iteration % self.context.config.mlo.every != 0:
            return self._segmenter_step(images, masks, synthetic_masks)
        if not self.upper:  # the ablation: the same schedule without feedback
            scalars = self._segmenter_step(images, masks, synthetic_masks)
            return {**scalars, **self.synthesis.gan_step(*self.context.generator_batch())}
        result = self.upper_step(images, masks, synthetic_masks)
        self.context.segmenter_step_with(result.train_grads)
        scalars = {"loss": float(result.real_loss + result.synthetic_loss), "loss_real": float(result.real_loss),
                   "upper_loss": float(result.validation_loss)}
        if self.context.config.mlo.gamma > 0:  # the closure returns gamma * L_syn; log L_syn as segmenter_step does
            scalars["loss_synthetic"] = float(result.synthetic_loss) / self.context.config.mlo.gamma
        hooks = [variable.before_generator_step for variable in self.upper]
        gan = self.synthesis.gan_step(*self.context.generator_batch(), before_step=lambda: [hook() for hook in hooks])
        return {**scalars, **gan}

    def _segmenter_step(self, images: Tensor, masks: Tensor, synthetic_masks: Tensor) -> dict[str, float]:
        self.synthesis.generator.train()
        with torch.no_grad():
            synthetic_images = self.synthesis.synthesize(synthetic_masks)
        return self.context.segmenter_step(images, masks, synthetic=(synthetic_images, synthetic_masks))

    def upper_step(self, images: Tensor, masks: Tensor, synthetic_masks: Tensor) -> Hypergradient:
        """Hand each upper-level variable its part of the hypergradient.

        The result also holds the lower level's gradient, which the segmenter's step reuses.
        """
        context, settings = self.context, self.context.config.mlo
        problem = UnrolledProblem(
            segmenter=context.segmenter,
            real_loss=lambda forward: segmentation_loss(forward(images), masks),
            synthetic_loss=self._synthetic_loss(synthetic_masks),
            validation_loss=lambda forward: context.validation.loss(forward(context.validation.images)),
            upper=[tensor for variable in self.upper for tensor in variable.tensors()],
            lr=context.optimizer.param_groups[0]["lr"],  # the schedule's current rate
        )
        context.segmenter.train()
        result = hypergradient(problem, settings.hypergradient, settings.unroll_steps)
        start = 0
        for variable in self.upper:
            count = len(variable.tensors())
            variable.apply(result.upper[start:start + count])
            start += count
        return result

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
        return {**super().state_dict(), "upper": {variable.name: variable.state_dict() for variable in self.upper}}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        super().load_state_dict(state)
        for variable in self.upper:
            variable.load_state_dict(state["upper"][variable.name])
