"""Checkpoints written atomically, so a run killed mid-write never leaves a corrupt file."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from genseg.data.io import atomic_write


def save_atomic(state: dict[str, Any], path: Path) -> None:
    """Write ``state`` with torch.save to a temporary file beside ``path``, then rename it.

    ``os.replace`` is atomic on POSIX and Windows: readers see the old file or the new one.
    """
    atomic_write(path, lambda temp: torch.save(state, temp))


def load_checkpoint(path: Path) -> dict[str, Any]:
    """Load a checkpoint that genseg wrote (it holds RNG states, so not weights-only)."""
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no checkpoint here; train the run first (genseg train)")
    return torch.load(path, map_location="cpu", weights_only=False)
