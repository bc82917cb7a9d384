"""Training methods, created by name: each is a small strategy the shared loop calls."""

from __future__ import annotations

from genseg.methods.base import Method, TrainingContext
from genseg.methods.genseg import GenSeg
from genseg.methods.semisup import MeanTeacher
from genseg.methods.separate import Separate
from genseg.methods.supervised import Augment, Supervised

METHODS: dict[str, type[Method]] = {cls.name: cls for cls in (Supervised, Augment, Separate, GenSeg, MeanTeacher)}


def create_method(name: str, context: TrainingContext) -> Method:
    """The method ``name`` bound to ``context``.

    Raises:
        ValueError: for a name that is not registered.
    """
    if name not in METHODS:
        raise ValueError(f"unknown method {name!r}; available: {', '.join(sorted(METHODS))}")
    return METHODS[name](context)


__all__ = ["METHODS", "Method", "TrainingContext", "create_method"]
