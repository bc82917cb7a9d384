"""The settings of each method, as torch-free dataclasses: the config's ``method`` section holds the
method's name and these keys beside it (:data:`genseg.plugins.METHODS` names each method's
``Options``; ``supervised`` and ``augment`` have none).

Example:
    >>> GenSegOptions(upper="pairs", candidates=4).upper_names()
    ['pairs']
    >>> GenSegOptions().upper_names(has_architecture=False)  # auto: the compositing generator's appearance
    ['generator']
"""

from __future__ import annotations

from dataclasses import dataclass

from genseg.errors import ConfigError
from genseg.plugins import HYPERGRADIENTS, UPPER_VARIABLES


def _check(condition: bool, message: str) -> None:
    if not condition:
        raise ConfigError(message)


@dataclass
class SyntheticPairOptions:
    """How the synthetic pairs enter the segmenter's step (``copypaste``, ``separate``, ``genseg``).

    Args:
        gamma: weight of the synthetic pairs' loss beside the real pairs'.
        synthetic_batch_size: synthetic pairs per step, at most the real batch (their masks are the
            first of the real batch, transformed); None: as many as the real batch. 2 of 4 make a
            GenSeg step 2.1x an ``augment`` one instead of 3.0x (docs/benchmarks.md, the cost of
            the upper-level variables).
    """

    gamma: float = 1.0
    synthetic_batch_size: int | None = 2

    def __post_init__(self) -> None:
        _check(self.gamma >= 0, f"gamma must be >= 0, got {self.gamma}")
        _check(self.synthetic_batch_size is None or self.synthetic_batch_size >= 1,
               f"synthetic_batch_size must be >= 1 (or None: the whole batch), got {self.synthetic_batch_size}")


@dataclass
class GenSegOptions(SyntheticPairOptions):
    """GenSeg's multi-level optimization (levels 2 and 3 of docs/method.md), beside the synthetic pairs'.

    Args:
        upper: the upper-level variables the hypergradient moves: ``"auto"`` (A where the generator
            has architecture weights, as pix2pix does, else its own weights, such as the compositing
            generator's appearance), ``"arch"`` (A, the paper),
            ``"generator"`` (all generator weights), ``"pairs"`` (a weight per synthetic pair
            in the segmenter's step, learning to reweight), ``"gamma"`` (the synthetic loss's
            weight, learned, kept positive), several joined by ``+``
            (``"arch+generator"``, also called ``"both"``), or ``"none"`` (the ablation: the same
            schedule, no hypergradient).
        hypergradient: ``"exact"`` (second-order autograd) or ``"darts"`` (finite differences).
        unroll_steps: lower-level steps unrolled for the hypergradient.
        every: iterations between the generator side's updates (the upper-level step and the
            GAN step); the segmenter steps every iteration. 8 keeps a GenSeg iteration within
            1.3x a ``separate`` one (docs/benchmarks.md, the cost of the upper-level variables).
        arch_lr: Adam learning rate for A (and for the learned gamma's logarithm).
        generator_feedback: size of the hypergradient added to the generator's GAN gradient, as
            a fraction of that gradient's norm (upper = generator or both).
        val_views: augmented views of each validation pair in the smooth validation objective.
        candidates: with ``pairs`` in ``upper``, selection: an upper-level iteration draws this
            many times the synthetic batch, and the segmenter steps on the synthetic batch's
            worth whose one-step look-ahead lowers the validation loss most; 1: reweighting.
    """

    upper: str = "auto"
    hypergradient: str = "exact"
    unroll_steps: int = 1
    every: int = 8
    arch_lr: float = 3e-3
    generator_feedback: float = 0.5
    val_views: int = 1
    candidates: int = 1

    def __post_init__(self) -> None:
        super().__post_init__()
        names = self.upper_names()
        known = self.upper == "none" or (names and set(names) <= set(UPPER_VARIABLES) and len(set(names)) == len(names))
        _check(known, f"upper must be none, both, or variables of {UPPER_VARIABLES.names} joined by '+', "
                      f"got {self.upper!r}")
        HYPERGRADIENTS.entry(self.hypergradient)  # an unknown estimator: the registered ones and the closest
        _check(self.unroll_steps >= 1 and self.every >= 1, "unroll_steps and every must be >= 1")
        _check(self.hypergradient == "exact" or self.unroll_steps == 1,
               f"unroll_steps must be 1 with the darts hypergradient, got {self.unroll_steps}; or use 'exact'")
        _check(self.arch_lr > 0, f"arch_lr must be > 0, got {self.arch_lr}")
        _check(self.generator_feedback >= 0, f"generator_feedback must be >= 0, got {self.generator_feedback}")
        _check(self.val_views >= 1, f"val_views must be >= 1, got {self.val_views}")
        _check(self.candidates >= 1, f"candidates must be >= 1, got {self.candidates}")
        _check(self.candidates == 1 or self.upper == "pairs",
               f"candidates = {self.candidates} selects synthetic pairs by their look-ahead: it needs upper = "
               f"'pairs', got {self.upper!r}")

    def upper_names(self, has_architecture: bool = True) -> list[str]:
        """The upper-level variables ``upper`` names, in order (empty for ``"none"``), for a generator
        with architecture weights A or without them (what ``"auto"`` picks between)."""
        if self.upper == "none":
            return []
        if self.upper == "auto":
            return ["arch"] if has_architecture else ["generator"]
        return ["arch", "generator"] if self.upper == "both" else self.upper.split("+")


@dataclass
class MeanTeacherOptions:
    """Mean teacher's settings (``semisup``).

    Args:
        consistency_weight: weight of the consistency loss once ramped up.
        teacher_decay: the teacher's exponential-moving-average decay (a plain average while the
            run is younger than ``1 / (1 - decay)`` steps).
        ramp_up: share of the iterations over which the consistency weight ramps up (the usual
            sigmoid schedule).
    """

    consistency_weight: float = 1.0
    teacher_decay: float = 0.99
    ramp_up: float = 0.4

    def __post_init__(self) -> None:
        _check(self.consistency_weight >= 0, f"consistency_weight must be >= 0, got {self.consistency_weight}")
        _check(0.0 <= self.teacher_decay < 1.0, f"teacher_decay must be in [0, 1), got {self.teacher_decay}")
        _check(0.0 <= self.ramp_up <= 1.0, f"ramp_up must be in [0, 1], got {self.ramp_up}")
