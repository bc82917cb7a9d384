"""Every plug-in point of genseg, in one place: a name per entry, where its implementation lives,
and where its torch-free ``Options`` dataclass lives.

These registries sit below everything else (they import only :mod:`genseg.registry`), so the
config, the CLI, the run folder and the benchmark read them without importing the methods,
networks or generators they name: reading a config imports no torch, and no module reaches back
up into the rooms that use it. Adding a plug-in is its class and one line here, or one
:meth:`~genseg.registry.Registry.register` call from outside the package.

Example:
    >>> "augment" in METHODS, METHODS.load("augment").__name__
    (True, 'Augment')
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from genseg.registry import Registry

if TYPE_CHECKING:
    from genseg.methods.base import Method

METHODS = Registry("method", {
    "supervised": "genseg.methods.supervised:Supervised",
    "augment": "genseg.methods.supervised:Augment",
    "copypaste": ("genseg.methods.copypaste:CopyPaste", "genseg.methods.options:SyntheticPairOptions"),
    "separate": ("genseg.methods.separate:Separate", "genseg.methods.options:SyntheticPairOptions"),
    "genseg": ("genseg.methods.genseg:GenSeg", "genseg.methods.options:GenSegOptions"),
    "semisup": ("genseg.methods.semisup:MeanTeacher", "genseg.methods.options:MeanTeacherOptions"),
})
"""The training methods and their ``Options`` (:mod:`genseg.methods.options`): the config's
``method`` section is a name here and that class's keys. Each class declares what it needs
(:attr:`~genseg.methods.base.Method.needs_generator`, ``needs_unlabeled``)."""

UPPER_VARIABLES = Registry("upper-level variable", {
    "arch": "genseg.methods.upper:ArchitectureWeights",
    "generator": "genseg.methods.upper:GeneratorWeights",
    "pairs": "genseg.methods.upper:PairWeights",
    "gamma": "genseg.methods.upper:LearnedGamma",
})
"""What GenSeg's hypergradient can move; ``method.upper`` joins names with ``+``. A class with a
``from_settings(generator, settings)`` constructor (settings: :class:`~genseg.methods.options.GenSegOptions`)
and the :class:`~genseg.methods.upper.UpperVariable` methods."""

HYPERGRADIENTS = Registry("hypergradient", {
    "exact": "genseg.mlo:hypergradient_exact",
    "darts": "genseg.mlo:hypergradient_darts",
})
"""Estimators of GenSeg's hypergradient (``method.hypergradient``): ``(problem, steps) -> Hypergradient``."""

GENERATORS = Registry("generator", {
    "pix2pix": ("genseg.generators.pix2pix:Pix2Pix", "genseg.generators.options:Pix2PixOptions"),
    "composite": ("genseg.generators.composite:Compositor", "genseg.generators.options:CompositeOptions"),
})
"""Mask-to-image generator kinds: classes implementing :class:`~genseg.generators.base.MaskToImage`,
their settings in :mod:`genseg.generators.options`."""

SEGMENTERS = Registry("segmenter", {
    "unet": ("genseg.segmenters.networks:build_unet", "genseg.segmenters.options:UNetOptions"),
    "attention_unet": ("genseg.segmenters.networks:build_attention_unet",
                       "genseg.segmenters.options:AttentionUNetOptions"),
    "deeplabv3plus": ("genseg.segmenters.networks:build_deeplabv3plus",
                      "genseg.segmenters.options:DeepLabV3PlusOptions"),
    "segformer": ("genseg.segmenters.networks:build_segformer", "genseg.segmenters.options:SegFormerOptions"),
})
"""Segmentation networks: builders ``(in_channels, classes, options) -> nn.Module``
(:mod:`genseg.segmenters.networks`), their settings in :mod:`genseg.segmenters.options`."""

AUGMENTATIONS = Registry("augmentation", {
    "standard": "genseg.augment.presets:STANDARD",
    "nnunet": "genseg.augment.presets:NNUNET",
})
"""Named (geometric, intensity) ranges of the ``augment`` recipe (:mod:`genseg.augment.presets`)."""

EXECUTORS = Registry("executor", {
    "local": "genseg.benchmark.runner:LocalExecutor",
    "ray": "genseg.benchmark.ray_executor:RayExecutor",
})
"""Where a benchmark's runs execute: a dataclass whose fields are its settings, with the
``execute(tasks)`` method of :class:`~genseg.benchmark.runner.Executor`."""


def method_class(name: str) -> type[Method]:
    """The class of method ``name`` (imported on first use).

    Raises:
        ValueError: for a name that is not registered.
    """
    return METHODS.load(name)


def generator_methods() -> tuple[str, ...]:
    """The methods that pre-train a generator on the budget's pairs before their first step."""
    return tuple(name for name in METHODS if method_class(name).needs_generator)


__all__ = ["AUGMENTATIONS", "EXECUTORS", "GENERATORS", "HYPERGRADIENTS", "METHODS", "SEGMENTERS",
           "UPPER_VARIABLES", "generator_methods", "method_class"]
