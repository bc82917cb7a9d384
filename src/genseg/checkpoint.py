"""Checkpoints written atomically, so a run killed mid-write never leaves a corrupt file."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Any

import torch


def save_atomic(state: dict[str, Any], path: Path) -> None:
    """Write ``state`` with torch.save to a temporary file beside ``path``, then rename it.

    ``os.replace`` is atomic on POSIX and Windows: readers see the old file or the new one.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(handle, "wb") as tmp:
            torch.save(state, tmp)
            tmp.flush()
            os.fsync(tmp.fileno())
        os.replace(tmp_name, path)
    except BaseException:
        Path(tmp_name).unlink(missing_ok=True)
        raise


def load_checkpoint(path: Path) -> dict[str, Any]:
    """Load a checkpoint that genseg wrote (it holds RNG states, so not weights-only)."""
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no checkpoint here; train the run first (genseg train)")
    return torch.load(path, map_location="cpu", weights_only=False)
