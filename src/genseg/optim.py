"""The segmenter's optimizer and learning-rate schedule, built from the run's :class:`TrainConfig`.

One recipe for every method (docs/method.md's protocol): the choice among these was made on development
cases (docs/benchmarks.md, "The recipe").
"""

from __future__ import annotations

import math
from collections.abc import Iterable

import torch
from torch import nn

from genseg.config import TrainConfig

POLY_EXPONENT = 0.9  # nnU-Net's
SGD_MOMENTUM = 0.99  # nnU-Net's, with Nesterov
ADAMW_WEIGHT_DECAY = 1e-4


def build_optimizer(parameters: Iterable[nn.Parameter], config: TrainConfig) -> torch.optim.Optimizer:
    """The optimizer ``config.optimizer`` at ``config.lr``."""
    if config.optimizer == "sgd":
        return torch.optim.SGD(parameters, lr=config.lr, momentum=SGD_MOMENTUM, nesterov=True)
    if config.optimizer == "adamw":
        return torch.optim.AdamW(parameters, lr=config.lr, weight_decay=ADAMW_WEIGHT_DECAY)
    return torch.optim.Adam(parameters, lr=config.lr)


def lr_factor(iteration: int, config: TrainConfig) -> float:
    """The learning rate at ``iteration`` (0-based) as a fraction of ``config.lr``."""
    if iteration < config.warmup:
        return (iteration + 1) / config.warmup
    progress = min(1.0, (iteration - config.warmup) / max(1, config.iterations - config.warmup))
    if config.schedule == "poly":
        return (1.0 - progress) ** POLY_EXPONENT
    if config.schedule == "cosine":
        return 0.5 * (1.0 + math.cos(math.pi * progress))
    return 1.0


def build_schedule(optimizer: torch.optim.Optimizer, config: TrainConfig) -> torch.optim.lr_scheduler.LambdaLR:
    """A scheduler stepped once per iteration after the optimizer step."""
    return torch.optim.lr_scheduler.LambdaLR(optimizer, lambda iteration: lr_factor(iteration, config))
