"""``separate``: the generator is trained first, then frozen; its pairs get no feedback."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from genseg.generator_level import GeneratorLevel, sampled_pairs
from genseg.methods.base import Method, TrainingContext
from genseg.runs import RunPaths


class Separate(Method):
    """Augmented real pairs plus synthetic pairs x~ = G(T(y)) from a generator trained beforehand."""

    name = "separate"
    needs_generator = True
    volumes = True

    def __init__(self, context: TrainingContext) -> None:
        super().__init__(context)
        batches = context.batches
        self.synthesis = GeneratorLevel.build(context.config, batches.num_classes, batches.channels,
                                              batches.spatial_dims, sampled_pairs(batches), batches.rng,
                                              context.device, context.progress)

    def prepare(self, run_dir: Path) -> None:
        self.synthesis.pretrain(RunPaths(run_dir).pretrain)

    def step(self, iteration: int) -> dict[str, float]:
        images, masks = self.context.batches.augmented()
        draw = self.context.batches.synthetic_draw(self.synthesis.generator)
        with torch.no_grad():
            synthetic_images = self.synthesis.generator.render(draw)
        return self.context.stepper.step(images, masks, synthetic=(synthetic_images, draw.masks))

    def state_dict(self) -> dict[str, Any]:
        return {"synthesis": self.synthesis.state_dict()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.synthesis.load_state_dict(state["synthesis"])

    def exported_weights(self) -> dict[str, Any]:
        return {"generator": self.synthesis.generator.network.state_dict()}
