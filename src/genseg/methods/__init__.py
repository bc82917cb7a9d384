"""Training methods, created by name: each is a small strategy the one training loop calls.

:data:`genseg.plugins.METHODS` lists them and :data:`genseg.plugins.UPPER_VARIABLES` GenSeg's
upper-level variables (:mod:`genseg.methods.upper`). Each method class declares what it needs
(:attr:`Method.needs_generator`, :attr:`Method.needs_unlabeled`); every other list of methods is
derived from these. Adding a method is a class here and a line in :mod:`genseg.plugins`.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

from genseg.plugins import method_class

if TYPE_CHECKING:
    from genseg.methods.base import Method, TrainingContext


def create_method(name: str, context: TrainingContext) -> Method:
    """The method ``name`` bound to ``context``."""
    return method_class(name)(context)


def __getattr__(name: str) -> Any:
    if name in ("Method", "TrainingContext"):
        return getattr(import_module("genseg.methods.base"), name)
    raise AttributeError(f"module 'genseg.methods' has no attribute {name!r}")


__all__ = ["Method", "TrainingContext", "create_method"]
