"""Stored mask values and the contiguous classes a model predicts, mapped both ways.

A mask set may store its classes as any values in 0..31, with gaps ({0, 7}, or {0, 1, 4}), or as
values drawn to be seen ({0, 128, 255}), or as colours (an annotation tool's colour-coded export,
:data:`~genseg.data.io.COLOUR_LABEL`); a binary set may store its foreground as 1 or 255 (or
both, file by file). A model predicts the
classes 0..K-1. :func:`label_map` reads the map from the budget's masks (and the labels a data set
declares) once, at training; the run records it, evaluation encodes references with it and
prediction writes the user's own values back. Without it, {0, 7} built an 8-class model whose six
empty classes each scored a perfect Dice.

Example:
    >>> labels = LabelMap((0, 7))
    >>> labels.encode(np.array([[0, 7]]), Path("mask.png")).tolist(), labels.decode(np.array([1])).tolist()
    ([[0, 1]], [7])
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from genseg.data.io import COLOUR_LABEL
from genseg.errors import DataError

FOREGROUND_255 = 255
"""The value a binary mask may store its foreground as (read as label 1)."""


@dataclass(frozen=True)
class LabelMap:
    """The stored value of each class: ``values[k]`` is class k's value; ``values[0]`` is 0 (background)."""

    values: tuple[int, ...]

    def __post_init__(self) -> None:
        if len(self.values) < 2 or self.values[0] != 0 or list(self.values) != sorted(set(self.values)):
            raise ValueError(f"label values must start at 0 and increase, with a foreground, got {self.values}")

    @classmethod
    def identity(cls, num_classes: int) -> LabelMap:
        """The map of masks stored as 0..num_classes-1 (runs made before maps were recorded)."""
        return cls(tuple(range(num_classes)))

    @property
    def num_classes(self) -> int:
        return len(self.values)

    @property
    def is_colour(self) -> bool:
        """Whether the classes are colours (predictions are then written as RGB)."""
        return self.values[-1] >= COLOUR_LABEL

    def encode(self, stored: np.ndarray, path: Path) -> np.ndarray:
        """Classes (int64, same shape) of a mask's stored values; a value the map lacks is refused, naming ``path``."""
        stored = np.asarray(stored, dtype=np.int64)
        if self.values == (0, 1):
            stored = np.where(stored == FOREGROUND_255, 1, stored)
        if self.is_colour:
            stored = _as_colour(stored)
        values = np.asarray(self.values, dtype=np.int64)
        classes = np.searchsorted(values, stored).clip(max=self.num_classes - 1)
        unknown = values[classes] != stored
        if unknown.any():
            raise DataError(f"mask holds label value(s) {_listed(np.unique(stored[unknown]).tolist())}, which the "
                            f"run's training masks never had (they have {_listed(self.values)}); a class must "
                            "appear in the budget's masks to be learned, so evaluate on masks with the run's labels",
                            path)
        return classes

    def decode(self, classes: np.ndarray) -> np.ndarray:
        """The stored values of predicted classes, for masks a user opens beside their own."""
        return np.asarray(self.values, dtype=np.int64)[classes]

    def describe(self) -> str:
        """One line for the log and ``genseg plan``."""
        if self.values == tuple(range(self.num_classes)):
            return f"labels {_listed(self.values)} ({self.num_classes} classes)"
        return f"label values {_listed(self.values)} are classes {_listed(range(self.num_classes))}"

    def to_dict(self) -> dict[str, list[int]]:
        return {"values": list(self.values)}

    @classmethod
    def from_dict(cls, data: Mapping[str, list[int]]) -> LabelMap:
        return cls(tuple(int(value) for value in data["values"]))


def label_map(values_by_file: Mapping[Path, Collection[int]], declared: Iterable[int] = ()) -> LabelMap:
    """The map of a mask set: its values (and the ``declared`` ones, as nnU-Net's dataset.json lists
    them), 0 first, in increasing order; 255 is the foreground of a binary set, and a class of its
    own where a file holds it beside other classes (0/128/255). In a colour-coded set, gray values
    are their colours (white on black is the white class).

    Raises:
        DataError: every mask is background only; or 255 in one file beside a multi-class file
            (values 2..254) where no file holds both: whether 255 is the foreground or a class of
            its own is ambiguous. Both files are named.
    """
    if values_by_file and not any(value for values in values_by_file.values() for value in values):
        raise DataError(f"every mask of the {len(values_by_file)} labeled cases is background only: there is "
                        "nothing to learn; check that the masks mark the structures (0 = background)",
                        next(iter(values_by_file)))
    stored = {int(value) for values in values_by_file.values() for value in values}
    if any(value >= COLOUR_LABEL for value in stored):
        values = set(_as_colour(np.array(sorted(stored), dtype=np.int64)).tolist())
    else:
        values = _gray_values(values_by_file)
    values |= {0, *declared}
    if len(values) < 2:
        raise ValueError("a label map needs a foreground value")
    return LabelMap(tuple(sorted(values)))


def _gray_values(values_by_file: Mapping[Path, Collection[int]]) -> set[int]:
    """The label values of a gray mask set, 255 read as 1 where it is a binary set's foreground."""
    with_255 = next((path for path, values in values_by_file.items() if FOREGROUND_255 in values), None)
    multi = next(((path, value) for path, values in values_by_file.items()
                  for value in sorted(values) if 2 <= value < FOREGROUND_255), None)
    class_255 = any(FOREGROUND_255 in values and any(2 <= value < FOREGROUND_255 for value in values)
                    for values in values_by_file.values())
    if with_255 is not None and multi is not None and not class_255:
        raise DataError(f"masks mix 0/255 files (such as {with_255}) with multi-class ones ({multi[0]} holds label "
                        f"{multi[1]}): 255 is read as the foreground only where every mask is binary; save each "
                        "mask with one value per class (0 = background, 1..K)", multi[0])
    return {1 if value == FOREGROUND_255 and not class_255 else int(value)
            for values in values_by_file.values() for value in values}


def _as_colour(stored: np.ndarray) -> np.ndarray:
    """A colour-coded mask set's values with gray ones as their colour: a file with no colour but
    gray (white on black) reads as gray values, which are the colours (v, v, v) of the others."""
    return np.where((stored > 0) & (stored < COLOUR_LABEL), COLOUR_LABEL + stored * 0x010101, stored)


def value_name(value: int) -> str:
    """A label value as metric columns name it: ``7``, or a colour's hex ``ff0000``."""
    return f"{value - COLOUR_LABEL:06x}" if value >= COLOUR_LABEL else str(value)


def _listed(values: Iterable[int]) -> str:
    return ", ".join(f"#{value_name(value)}" if value >= COLOUR_LABEL else str(value) for value in values)
