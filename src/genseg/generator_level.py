"""Level 1 of docs/method.md: a mask-to-image generator, the real pairs it learns from, its pre-training.

:class:`GeneratorLevel` serves the generative methods (``separate`` pre-trains it, ``genseg``
keeps training it) and :func:`pretrain_generator`, which runs its pre-training alone. The
generator trains on the budget's training pairs only, geometrically augmented
(:func:`generator_pairs`), so it meets masks like the T(y) it will be fed. Pre-training is
resumable from ``pretrain.pt``, stamped with :func:`~genseg.runs.pretraining_key` so that another
run with the same data, budget, seed and generator settings can adopt it.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from torch import Tensor
from tqdm.auto import tqdm

from genseg.augment import draw_and_augment_pairs
from genseg.batches import Batches
from genseg.checkpoint import load_checkpoint, save_atomic
from genseg.config import RunConfig
from genseg.errors import ConfigError
from genseg.generators import create_generator
from genseg.generators.base import MaskToImage
from genseg.plugins import generator_methods, method_class
from genseg.run_data import start_run, weights_checkpoint
from genseg.runs import RunPaths, pretraining_key
from genseg.runtime import resolve_device, seed_everything

log = logging.getLogger(__name__)
ANNOUNCE_AFTER = 5  # pre-training steps timed before the expected duration is announced

BatchSource = Callable[[], tuple[Tensor, Tensor]]
"""Draws a batch of real training pairs for the generator's own step: images in [0, 1], label maps."""


def generator_pairs(images: Tensor, masks: Tensor, num_classes: int, rng: torch.Generator) -> tuple[Tensor, Tensor]:
    """Real pairs as the generator learns from them: a random geometry T, reflected at the borders, no jitter."""
    return draw_and_augment_pairs(images, masks, num_classes, rng, padding="reflection")


class GeneratorLevel:
    """A generator and its own training: single steps, pre-training, and their resumable state.

    Args:
        generator: the mask-to-image generator.
        batches: real training pairs for each of its steps (see :func:`generator_pairs`).
        rng: the generator every draw of ``batches`` comes from (saved with the pre-training).
        pretrain_iterations: steps of :meth:`pretrain`.
        key: what ``pretrain.pt`` is stamped with (:func:`~genseg.runs.pretraining_key`).
        progress: show a progress bar while pre-training.
    """

    def __init__(self, generator: MaskToImage, batches: BatchSource, rng: torch.Generator, *,
                 pretrain_iterations: int, key: str | None, progress: bool = True) -> None:
        self.generator = generator
        self.batches = batches
        self.rng = rng
        self.pretrain_iterations = pretrain_iterations
        self.key = key
        self.progress = progress
        self.pretrained_steps = 0

    @classmethod
    def build(cls, config: RunConfig, num_classes: int, image_channels: int, spatial_dims: int,
              batches: BatchSource, rng: torch.Generator, device: torch.device, progress: bool = True
              ) -> GeneratorLevel:
        """The level a run's config describes: its kind of generator, untrained, on ``device``, drawing
        images (``spatial_dims`` 2) or volumes (3)."""
        generator = create_generator(config.generator, num_classes, image_channels, device,
                                     spatial_dims=spatial_dims)
        return cls(generator, batches, rng, pretrain_iterations=config.generator.pretrain_iterations,
                   key=pretraining_key(config), progress=progress)

    def train_step(self, before_step: Callable[[], None] | None = None) -> dict[str, float]:
        """One step of the generator's own training on a fresh batch (``before_step``: see
        :meth:`~genseg.generators.base.MaskToImage.train_step`)."""
        return self.generator.train_step(*self.batches(), before_step=before_step)

    def pretrain(self, checkpoint: Path) -> None:
        """Train the generator alone for ``pretrain_iterations`` steps, resumable from ``checkpoint``."""
        total = self.pretrain_iterations
        if self.pretrained_steps < total and checkpoint.is_file():
            self._restore_pretraining(load_checkpoint(checkpoint))
        bar = tqdm(range(self.pretrained_steps, total), initial=self.pretrained_steps, total=total,
                   desc="generator pre-training", disable=not self.progress, dynamic_ncols=True)
        started, first = time.perf_counter(), self.pretrained_steps
        for step in bar:
            scalars = self.train_step()
            self.pretrained_steps = step + 1
            if self.pretrained_steps == first + ANNOUNCE_AFTER and total > self.pretrained_steps:
                pace = (time.perf_counter() - started) / ANNOUNCE_AFTER
                message = (f"generator pre-training: {total} steps before the segmenter's first step, about "
                           f"{pace * (total - first) / 60:.1f} min at this pace (--pretrain-iterations; reuse one "
                           "with --pretrained-generator)")
                log.info(message)
                if self.progress:
                    bar.write(message)
            if self.pretrained_steps % 100 == 0 or self.pretrained_steps == total:
                bar.set_postfix({name: f"{value:.3f}" for name, value in scalars.items()})
                save_atomic({"synthesis": self.state_dict(), "rng": self.rng.get_state(),
                             "torch_rng": torch.get_rng_state(), "key": self.key}, checkpoint)

    def _restore_pretraining(self, snapshot: dict[str, Any]) -> None:
        self.load_state_dict(snapshot["synthesis"])
        self.rng.set_state(snapshot["rng"])
        torch.set_rng_state(snapshot["torch_rng"])

    def state_dict(self) -> dict[str, Any]:
        """The generator's state with the pre-training's step count beside it (pretrain.pt's and
        last.pt's layout since the first version, so older runs resume)."""
        return {**self.generator.state_dict(), "pretrained_steps": self.pretrained_steps}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.generator.load_state_dict({key: value for key, value in state.items() if key != "pretrained_steps"})
        self.pretrained_steps = state["pretrained_steps"]


def sampled_pairs(batches: Batches) -> BatchSource:
    """The real training pairs of ``batches``, as the generator learns from them (:func:`generator_pairs`)."""
    return lambda: generator_pairs(*batches.real(), batches.num_classes, batches.rng)


def pretrain_generator(config: RunConfig, out: Path, *, progress: bool = True) -> Path:
    """Train the generator alone (level 1 of docs/method.md) and save it as the run's ``final.pt``.

    The generator trains for ``config.generator.pretrain_iterations`` steps on the budget's
    training pairs, drawn as in the pre-training stage of ``genseg train --method separate``
    (resumable from ``pretrain.pt`` if interrupted). No segmenter is built, so the generator's
    initial weights are drawn from another point of the seeded random stream than in a training
    run's pre-training; and the run folder serves :func:`~genseg.generation.generate_pairs`, not
    ``genseg evaluate``.

    Args:
        config: a run configuration with a method that has a generator (separate, genseg).
        out: the run folder.
        progress: show a progress bar.

    Returns:
        The checkpoint written (``out/final.pt``).
    """
    if not method_class(config.method.name).needs_generator:
        raise ConfigError(f"method {config.method.name!r} has no generator; use one of {generator_methods()}")
    paths = RunPaths(Path(out))
    if paths.weights("final").is_file() or paths.last.is_file():
        raise FileExistsError(f"{paths.root} already holds a run; choose another --out")
    seed_everything(config.train.seed)
    config, data = start_run(config, paths)
    device = resolve_device(config.train.device)
    batches = Batches.seeded(data.train.to(device), data.num_classes, seed=config.train.seed,
                             batch_size=config.train.batch_size, sampling=config.train.sampling)
    level = GeneratorLevel.build(config, data.num_classes, data.in_channels, data.dims, sampled_pairs(batches),
                                 batches.rng, device, progress)
    level.pretrain(paths.pretrain)
    save_atomic(weights_checkpoint(config, data, {"generator": level.generator.network.state_dict()}, iteration=0),
                paths.weights("final"))
    log.info("pre-trained the generator for %d steps; saved %s", config.generator.pretrain_iterations,
             paths.weights("final"))
    return paths.weights("final")
