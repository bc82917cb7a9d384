"""The settings of each generator kind, as torch-free dataclasses: reading a config checks them
without importing a network (:data:`genseg.plugins.GENERATORS` names each kind's ``Options``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from genseg.errors import ConfigError

#: The ``Options`` field metadata key of a setting written to config.json only when it is set.
RECORDED_WHEN_SET = "recorded_when_set"


def added_setting(default: Any) -> Any:
    """An ``Options`` field for a setting added after runs were made without it.

    It is recorded in the config's generator section only when it differs from ``default``, so
    the runs that leave it off keep their config.json and their generator pre-training's key (a
    hash of the config, :func:`~genseg.runs.pretraining_key`): they resume and share as before.
    """
    return field(default=default, metadata={RECORDED_WHEN_SET: True})


@dataclass
class Pix2PixOptions:
    """pix2pix's own settings: the generator section's keys beside name, lr and pretrain_iterations.

    Args:
        ngf: generator base width.
        ndf: critic base width.
        searchable: whether the generator's cells are softmax(A)-weighted mixtures of candidate
            operations (A: GenSeg's ``arch`` upper level).
        lambda_l1: weight of the L1 reconstruction term of the generator's loss.
        diffaugment: show the critic every pair, real and generated, under one random colour,
            translation and cutout per step (:mod:`genseg.generators.diffaugment`).
        spade: mask-conditioned normalization in the decoder (:mod:`genseg.generators.spade`).
        noise: channels of the generator's latent input (0: none; dropout is then its only noise).
        lambda_ms: weight of the mode-seeking term (:func:`~genseg.generators.gan.mode_seeking_loss`),
            which needs ``noise``; each step then draws every mask twice.

    The last four are off by default and recorded in config.json only when set
    (:func:`added_setting`).
    """

    ngf: int = 32
    ndf: int = 32
    searchable: bool = True
    lambda_l1: float = 100.0
    diffaugment: bool = added_setting(False)
    spade: bool = added_setting(False)
    noise: int = added_setting(0)
    lambda_ms: float = added_setting(0.0)

    def __post_init__(self) -> None:
        if self.ngf < 4 or self.ndf < 4:
            raise ConfigError(f"ngf and ndf must be at least 4, got {self.ngf} and {self.ndf}")
        if self.lambda_l1 < 0 or self.lambda_ms < 0 or self.noise < 0:
            raise ConfigError(f"lambda_l1, lambda_ms and noise must be >= 0, got {self.lambda_l1}, "
                             f"{self.lambda_ms} and {self.noise}")
        if self.lambda_ms > 0 and self.noise == 0:
            raise ConfigError("lambda_ms rewards draws that differ with the noise: set noise > 0 too")


@dataclass
class CompositeOptions:
    """The compositing generator's settings: the generator section's keys beside name, lr and
    pretrain_iterations (``lr`` is the critic's learning rate).

    Args:
        pastes: foreground pastes onto each target.
        probability: chance that each paste is made.
        feather: initial width (sigma, px) of the soft alpha edge.
        max_feather: the widest edge the parameters may reach (sets the blur kernel's size).
        ndf: width of the critic of its own training.
        appearance_lr: Adam's learning rate for the appearance parameters in its own training.
    """

    pastes: int = 1
    probability: float = 1.0
    feather: float = 1.0
    max_feather: float = 4.0
    ndf: int = 32
    appearance_lr: float = 0.01

    def __post_init__(self) -> None:
        if self.pastes < 1 or not 0.0 < self.probability <= 1.0:
            raise ConfigError(f"pastes must be >= 1 and probability in (0, 1], got {self.pastes} and "
                              f"{self.probability}")
        if not 0.1 <= self.feather <= self.max_feather <= 16:
            raise ConfigError(f"need 0.1 <= feather <= max_feather <= 16 px, got {self.feather} and {self.max_feather}")
        if self.ndf < 4 or self.appearance_lr <= 0:
            raise ConfigError(f"ndf must be >= 4 and appearance_lr > 0, got {self.ndf} and {self.appearance_lr}")
