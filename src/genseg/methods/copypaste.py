"""``copypaste``: ``augment`` plus plain copy-paste of real foreground (CarveMix/TumorCP-style).

The baseline a compositing generator must beat: the same composites as the ``composite``
generator kind draws (:mod:`genseg.generators.composite`), at its initial, fixed appearance
(a 1 px feathered edge, the source's own colours), never trained and never steered. Each step
adds them to ``augment``'s pairs as ``separate`` adds its synthetic pairs.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from genseg.generator_level import GeneratorLevel, sampled_pairs
from genseg.generators.composite import Compositor
from genseg.methods.base import TrainingContext
from genseg.methods.separate import Separate


class CopyPaste(Separate):
    """Augmented real pairs plus composites of them, pasted at fixed appearance parameters.

    The pasting settings (pastes, probability, feather) are the generator section's when it names
    the ``composite`` kind, else that kind's defaults.
    """

    name = "copypaste"
    needs_generator = False
    volumes = False  # the compositor pastes regions of 2D images

    def __init__(self, context: TrainingContext) -> None:  # noqa: D107 - Separate's, with a fixed compositor
        settings = context.config.generator
        if settings.name != "composite":
            settings = settings.of_kind("composite")
        batches = context.batches
        compositor = Compositor(settings, batches.num_classes, batches.channels, context.device)
        self.context = context
        self.synthesis = GeneratorLevel(compositor, sampled_pairs(batches), batches.rng, pretrain_iterations=0,
                                        key=None, progress=False)

    def prepare(self, run_dir: Path) -> None:
        """Nothing is trained before the first step."""

    def state_dict(self) -> dict[str, Any]:
        return {}  # the appearance never moves

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Nothing to restore."""

    def exported_weights(self) -> dict[str, Any]:
        return {}  # no generator of the run's config to export
