"""Training methods, created by name: each is a small strategy the shared loop calls.

:data:`METHODS` is the one list of methods, and :data:`UPPER_VARIABLES` the one list of GenSeg's
upper-level variables (:mod:`genseg.methods.upper`): names and where their classes live,
readable without importing torch (config validation, the CLI's help). Each method class declares
what it needs (:attr:`Method.needs_generator`, :attr:`Method.needs_unlabeled`); every other list
of methods is derived from these. Adding a method is a class and a line here.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

from genseg.registry import Registry

if TYPE_CHECKING:
    from genseg.methods.base import Method, TrainingContext

METHODS = Registry("method", {
    "supervised": "genseg.methods.supervised:Supervised",
    "augment": "genseg.methods.supervised:Augment",
    "copypaste": ("genseg.methods.copypaste:CopyPaste", "genseg.methods.options:SyntheticPairOptions"),
    "separate": ("genseg.methods.separate:Separate", "genseg.methods.options:SyntheticPairOptions"),
    "genseg": ("genseg.methods.genseg:GenSeg", "genseg.methods.options:GenSegOptions"),
    "semisup": ("genseg.methods.semisup:MeanTeacher", "genseg.methods.options:MeanTeacherOptions"),
})
"""The training methods and their ``Options`` (:mod:`genseg.methods.options`): the config's
``method`` section is a name here and that class's keys."""

UPPER_VARIABLES = Registry("upper-level variable", {
    "arch": "genseg.methods.upper:ArchitectureWeights",
    "generator": "genseg.methods.upper:GeneratorWeights",
    "pairs": "genseg.methods.upper:PairWeights",
    "gamma": "genseg.methods.upper:LearnedGamma",
})
"""What GenSeg's hypergradient can move; ``method.upper`` joins names with ``+``. A class with a
``from_settings(generator, settings)`` constructor (settings: :class:`~genseg.methods.options.GenSegOptions`)
and the :class:`~genseg.methods.upper.UpperVariable` methods."""


def method_class(name: str) -> type[Method]:
    """The class of method ``name`` (imported on first use).

    Raises:
        ValueError: for a name that is not registered.
    """
    return METHODS.load(name)


def create_method(name: str, context: TrainingContext) -> Method:
    """The method ``name`` bound to ``context``."""
    return method_class(name)(context)


def generator_methods() -> tuple[str, ...]:
    """The methods that pre-train a generator on the budget's pairs before their first step."""
    return tuple(name for name in METHODS if method_class(name).needs_generator)


def __getattr__(name: str) -> Any:
    if name in ("Method", "TrainingContext"):
        return getattr(import_module("genseg.methods.base"), name)
    raise AttributeError(f"module 'genseg.methods' has no attribute {name!r}")


__all__ = ["METHODS", "UPPER_VARIABLES", "Method", "TrainingContext", "create_method", "generator_methods",
           "method_class"]
