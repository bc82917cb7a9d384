"""Training methods, created by name: each is a small strategy the shared loop calls.

:data:`REGISTRY` is the one list of methods: a name and where its class lives, readable without
importing torch (config validation, the CLI's help). Each class declares what it needs
(:attr:`Method.needs_generator`, :attr:`Method.needs_unlabeled`); every other list of methods is
derived from these. Adding a method is a class and a line here.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from genseg.methods.base import Method, TrainingContext

REGISTRY: dict[str, str] = {
    "supervised": "genseg.methods.supervised:Supervised",
    "augment": "genseg.methods.supervised:Augment",
    "copypaste": "genseg.methods.copypaste:CopyPaste",
    "separate": "genseg.methods.separate:Separate",
    "genseg": "genseg.methods.genseg:GenSeg",
    "semisup": "genseg.methods.semisup:MeanTeacher",
}
METHOD_NAMES = tuple(REGISTRY)


def method_class(name: str) -> type[Method]:
    """The class of method ``name`` (imported on first use).

    Raises:
        ValueError: for a name that is not registered.
    """
    if name not in REGISTRY:
        raise ValueError(f"unknown method {name!r}; available: {', '.join(METHOD_NAMES)}")
    module, attribute = REGISTRY[name].split(":")
    return getattr(import_module(module), attribute)


def create_method(name: str, context: TrainingContext) -> Method:
    """The method ``name`` bound to ``context``."""
    return method_class(name)(context)


def generator_methods() -> tuple[str, ...]:
    """The methods that pre-train a generator on the budget's pairs before their first step."""
    return tuple(name for name in REGISTRY if method_class(name).needs_generator)


def __getattr__(name: str) -> Any:
    if name in ("Method", "TrainingContext"):
        return getattr(import_module("genseg.methods.base"), name)
    raise AttributeError(f"module 'genseg.methods' has no attribute {name!r}")


__all__ = ["METHOD_NAMES", "REGISTRY", "Method", "TrainingContext", "create_method", "generator_methods",
           "method_class"]
