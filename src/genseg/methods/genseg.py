"""``genseg``: the end-to-end multi-level optimization of docs/method.md.

After the generator's pre-training on the budget's training pairs, every iteration takes a
segmenter step on augmented real pairs plus freshly generated pairs (level 2). Every ``method.every``
iterations the generator's side moves too:

1. an upper-level step: the hypergradient of the validation loss of the one-step-unrolled
   segmenter (:mod:`genseg.mlo`) w.r.t. the upper-level variables ``method.upper`` names
   (:mod:`genseg.methods.upper`: the generator's architecture weights A, its weights, or
   ``none``, the ablation: same schedule, no feedback), each taking its part;
2. a step of the generator's own training on augmented training pairs (level 1; pix2pix: a
   critic and a generator step), with the upper-level variables' feedback added to its gradient.

On those iterations the segmenter's step reuses the gradient the unroll already computed at the
current parameters, on the same real and synthetic batch (:class:`genseg.mlo.Hypergradient`),
instead of a second forward and backward pass. The unroll passes real and synthetic halves
through the network apart, as every segmenter step does, so the default batch-norm UNet sees the
same per-half statistics on every step. Unlike a plain step, an unrolled one leaves the
batch-norm running statistics as they were (the unroll works on copies of the buffers).
"""

from __future__ import annotations

import math
from typing import Any

import torch
from torch import Tensor

from genseg.generators.base import SyntheticDraw
from genseg.losses import segmentation_loss
from genseg.methods.base import TrainingContext
from genseg.methods.separate import Separate
from genseg.methods.upper import upper_variables
from genseg.mlo import Forward, Hypergradient, UnrolledProblem, hypergradient


class GenSeg(Separate):
    """Separate's pairs, with the generator kept training and tuned by validation feedback."""

    name = "genseg"
    needs_generator = True

    def __init__(self, context: TrainingContext) -> None:
        super().__init__(context)
        self.settings = context.config.method.settings
        self.upper = upper_variables(self.synthesis.generator, self.settings)

    def step(self, iteration: int) -> dict[str, float]:
        images, masks = self.context.batches.augmented()
        draw = self.context.batches.synthetic_draw(self.synthesis.generator)
        if iteration % self.settings.every != 0:
            return self._segmenter_step(images, masks, draw)
        if not self.upper:  # the ablation: the same schedule without feedback
            scalars = self._segmenter_step(images, masks, draw)
            return {**scalars, **self.synthesis.train_step()}
        candidates = self.settings.candidates
        if candidates > 1:  # a pool to select from
            generator = self.synthesis.generator
            draw = SyntheticDraw.cat([draw, *(self.context.batches.synthetic_draw(generator)
                                             for _ in range(candidates - 1))])
        # the synthetic pairs' noise (dropout), drawn from the run's stream
        seed = int(torch.randint(2**31 - 1, (1,), generator=self.context.batches.rng))
        result = self.upper_step(images, masks, draw, seed)
        weights = self._step_weights()
        if candidates > 1:  # selection: a step on the kept pairs, each at weight 1
            assert weights is not None, "selection weighs the pool's pairs (method.upper = 'pairs')"
            kept = draw.subset(torch.nonzero(weights > 0)[:, 0])
            with torch.no_grad():
                synthetic = (self._synthesize(kept, seed), kept.masks) if len(kept) else None
            scalars = self.context.stepper.step(images, masks, synthetic=synthetic)
            scalars["pairs_kept"] = len(kept) * candidates / len(draw)
        elif weights is None:  # the unroll's gradient is this step's
            self.context.stepper.step_with(result.train_grads)
            scalars = {"loss": float(result.real_loss + result.synthetic_loss), "loss_real": float(result.real_loss)}
            if self.settings.gamma > 0:  # the closure returns gamma * L_syn; log L_syn as a plain step does
                scalars["loss_synthetic"] = float(result.synthetic_loss) / self.settings.gamma
        else:  # the same pairs, weighed: a step of its own
            with torch.no_grad():
                synthetic = (self._synthesize(draw, seed), draw.masks)
            scalars = self.context.stepper.step(images, masks, synthetic=synthetic, synthetic_weights=weights)
            scalars["synthetic_weight"] = float(weights.mean())
            if weights.numel() > 1:  # a weight per pair
                scalars["pairs_kept"] = float((weights > 0).float().mean())
        scalars["upper_loss"] = float(result.validation_loss)
        hooks = [variable.before_generator_step for variable in self.upper]
        generator_scalars = self.synthesis.train_step(before_step=lambda: [hook() for hook in hooks])
        return {**scalars, **generator_scalars}

    def _segmenter_step(self, images: Tensor, masks: Tensor, draw: SyntheticDraw) -> dict[str, float]:
        with torch.no_grad():
            synthetic_images = self.synthesis.generator.render(draw)
        return self.context.stepper.step(images, masks, synthetic=(synthetic_images, draw.masks),
                                         synthetic_weights=self._step_weights())

    def upper_step(self, images: Tensor, masks: Tensor, draw: SyntheticDraw, seed: int) -> Hypergradient:
        """Hand each upper-level variable its part of the hypergradient.

        The result also holds the lower level's gradient, which the segmenter's step reuses.
        """
        context, settings = self.context, self.settings
        tensors = [variable.tensors(len(draw)) for variable in self.upper]

        def synthetic_loss(forward: Forward) -> Tensor:
            """gamma * L_syn, each pair's loss weighed by the variables, as a fixed function."""
            losses = segmentation_loss(forward(self._synthesize(draw, seed)), draw.masks, reduction="none")
            for variable in self.upper:
                losses = variable.weigh(losses)
            return settings.gamma * losses.mean()

        problem = UnrolledProblem(
            segmenter=context.stepper.segmenter,
            real_loss=lambda forward: segmentation_loss(forward(images), masks),
            synthetic_loss=synthetic_loss,
            validation_loss=lambda forward: context.validation.loss(forward(context.validation.images)),
            upper=[tensor for group in tensors for tensor in group],
            lr=context.stepper.optimizer.param_groups[0]["lr"],  # the schedule's current rate
        )
        context.stepper.segmenter.train()
        result = hypergradient(problem, settings.hypergradient, settings.unroll_steps)
        start = 0
        for variable, group in zip(self.upper, tensors, strict=True):
            variable.apply(result.upper[start:start + len(group)])
            start += len(group)
        return result

    def _synthesize(self, draw: SyntheticDraw, seed: int) -> Tensor:
        """The images of this draw, their noise drawn from ``seed``: the same images on every call."""
        devices = [self.context.device] if self.context.device.type == "cuda" else []
        with torch.random.fork_rng(devices=devices):
            torch.manual_seed(seed)
            return self.synthesis.generator.render(draw)

    def _step_weights(self) -> Tensor | None:
        """The synthetic pairs' weights in the segmenter's step: the product of the variables' (None: all 1)."""
        weights = [w for w in (variable.step_weights() for variable in self.upper) if w is not None]
        return math.prod(weights) if weights else None

    def state_dict(self) -> dict[str, Any]:
        return {**super().state_dict(), "upper": {variable.name: variable.state_dict() for variable in self.upper}}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        super().load_state_dict(state)
        for variable in self.upper:
            variable.load_state_dict(state["upper"][variable.name])
