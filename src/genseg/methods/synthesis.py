"""Level 1 of SPEC.md: the mask-to-image generator, its critic, and the synthetic pairs they give.

The generator and the PatchGAN critic train with the pix2pix losses on the budget's training
pairs only (geometrically augmented, so the generator meets masks like the T(y) it will be fed).
Synthetic images stay in torch and in the graph: ``x~ = match_intensity(post(G(y~)))``, the same
[0, 1] normalization as real images, no uint8 round trip.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn
from tqdm.auto import tqdm

from genseg.checkpoint import load_checkpoint, save_atomic
from genseg.config import GeneratorConfig
from genseg.generators import create_discriminator, create_generator
from genseg.generators.gan import discriminator_loss, generator_loss
from genseg.generators.masks import encode_masks, image_to_generator_space, mask_channels, synthesize
from genseg.methods.base import TrainingContext
from genseg.runs import RunPaths, pretraining_key

log = logging.getLogger(__name__)
ANNOUNCE_AFTER = 5  # pre-training steps timed before the expected duration is announced


def build_generator(settings: GeneratorConfig, num_classes: int, image_channels: int) -> nn.Module:
    """The generator a run's settings describe, for label maps of ``num_classes`` classes.

    Args:
        settings: the run's generator settings (name, width, searchable cells).
        num_classes: K, background included.
        image_channels: channels of the images it draws.

    Returns:
        The untrained generator, on the CPU.
    """
    return create_generator(settings.name, mask_channels(num_classes), image_channels, ngf=settings.ngf,
                            searchable=settings.searchable)


class SyntheticPairs:
    """The generator G, its critic D, their optimizers, and the synthesis x~ = post(G(y~)).

    Args:
        context: the shared training state (config, classes, device, rng).
    """

    def __init__(self, context: TrainingContext) -> None:
        settings = context.config.generator
        channels = mask_channels(context.num_classes)
        image_channels = context.train.images.shape[1]
        self.context = context
        self.generator = build_generator(settings, context.num_classes, image_channels).to(context.device)
        self.discriminator = create_discriminator(settings.name, channels, image_channels,
                                                  ndf=settings.ndf).to(context.device)
        betas = (0.5, 0.999)  # pix2pix's Adam settings
        self.generator_optimizer = torch.optim.Adam(self.generator.weight_parameters(), lr=settings.lr, betas=betas)
        self.discriminator_optimizer = torch.optim.Adam(self.discriminator.parameters(), lr=settings.lr, betas=betas)
        self.pretrained_steps = 0

    def synthesize(self, masks: Tensor) -> Tensor:
        """Images in [0, 1] for label maps ``masks``, differentiable w.r.t. the generator."""
        return synthesize(self.generator, masks, self.context.num_classes)

    def gan_step(self, images: Tensor, masks: Tensor,
                 before_step: Callable[[], None] | None = None) -> dict[str, float]:
        """One critic step and one generator step of pix2pix on real pairs.

        Args:
            images: real images in [0, 1].
            masks: their label maps.
            before_step: called after the generator's backward pass, before its optimizer step
                (GenSeg's upper-level variables add their feedback to the GAN gradient there).
        """
        self.generator.train()
        encoded = encode_masks(masks, self.context.num_classes)
        target = image_to_generator_space(images)
        fake = self.generator(encoded)
        self.discriminator_optimizer.zero_grad(set_to_none=True)
        critic_loss = discriminator_loss(self.discriminator, encoded, target, fake)
        critic_loss.backward()
        self.discriminator_optimizer.step()
        self.generator_optimizer.zero_grad(set_to_none=True)
        loss, parts = generator_loss(self.discriminator, encoded, target, fake,
                                     lambda_l1=self.context.config.generator.lambda_l1)
        loss.backward()
        if before_step is not None:
            before_step()
        self.generator_optimizer.step()
        return {"d_loss": critic_loss.item(), "g_gan": parts["gan"].item(), "g_l1": parts["l1"].item()}

    def pretrain(self, run_dir: Path) -> None:
        """Train the GAN alone for ``generator.pretrain_iterations`` steps (resumable)."""
        total = self.context.config.generator.pretrain_iterations
        checkpoint = RunPaths(run_dir).pretrain
        if self.pretrained_steps < total and checkpoint.is_file():
            self._restore_pretraining(load_checkpoint(checkpoint))
        bar = tqdm(range(self.pretrained_steps, total), initial=self.pretrained_steps, total=total,
                   desc="generator pre-training", disable=not self.context.progress, dynamic_ncols=True)
        started, first = time.perf_counter(), self.pretrained_steps
        for step in bar:
            scalars = self.gan_step(*self.context.generator_batch())
            self.pretrained_steps = step + 1
            if self.pretrained_steps == first + ANNOUNCE_AFTER and total > self.pretrained_steps:
                pace = (time.perf_counter() - started) / ANNOUNCE_AFTER
                message = (f"generator pre-training: {total} steps before the segmenter's first step, about "
                           f"{pace * (total - first) / 60:.1f} min at this pace (--pretrain-iterations; reuse one "
                           "with --pretrained-generator)")
                log.info(message)
                if self.context.progress:
                    bar.write(message)
            if self.pretrained_steps % 100 == 0 or self.pretrained_steps == total:
                bar.set_postfix(l1=f"{scalars['g_l1']:.3f}")
                save_atomic({"synthesis": self.state_dict(), "rng": self.context.rng.get_state(),
                             "torch_rng": torch.get_rng_state(), "key": pretraining_key(self.context.config)},
                            checkpoint)

    def _restore_pretraining(self, snapshot: dict[str, Any]) -> None:
        self.load_state_dict(snapshot["synthesis"])
        self.context.rng.set_state(snapshot["rng"])
        torch.set_rng_state(snapshot["torch_rng"])

    def state_dict(self) -> dict[str, Any]:
        return {
            "generator": self.generator.state_dict(),
            "discriminator": self.discriminator.state_dict(),
            "generator_optimizer": self.generator_optimizer.state_dict(),
            "discriminator_optimizer": self.discriminator_optimizer.state_dict(),
            "pretrained_steps": self.pretrained_steps,
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.generator.load_state_dict(state["generator"])
        self.discriminator.load_state_dict(state["discriminator"])
        self.generator_optimizer.load_state_dict(state["generator_optimizer"])
        self.discriminator_optimizer.load_state_dict(state["discriminator_optimizer"])
        self.pretrained_steps = state["pretrained_steps"]
