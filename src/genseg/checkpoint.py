"""Checkpoints written atomically, so a run killed mid-write never leaves a corrupt file."""

from __future__ import annotations

import errno
import os
import pickle
import shutil
from pathlib import Path
from typing import Any

import torch

from genseg.data.io import atomic_write
from genseg.errors import DataError

LOW_DISK_BYTES = 64 * 2**20
"""Free space under which a failed ``torch.save`` is taken for a full disk."""


def save_atomic(state: dict[str, Any], path: Path) -> None:
    """Write ``state`` with torch.save to a temporary file beside ``path``, then rename it.

    ``os.replace`` is atomic on POSIX and Windows: readers see the old file or the new one.
    torch reports a full disk as a RuntimeError ("unexpected pos") that names neither the disk
    nor the file; it is raised as the ``OSError`` (ENOSPC) it is, which the CLI states in one line.
    """
    try:
        atomic_write(path, lambda temp: torch.save(state, temp))
    except RuntimeError as error:
        if shutil.disk_usage(path.parent).free >= LOW_DISK_BYTES:
            raise
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(path)) from error


def load_checkpoint(path: Path) -> dict[str, Any]:
    """Load a checkpoint that genseg wrote: tensors and plain containers only.

    ``weights_only=True`` refuses any other pickled object, because unpickling one can run code:
    a checkpoint from elsewhere is data, never a program. Everything genseg saves (weights,
    optimizer and random-generator states, the config as plain values) loads this way.

    Raises:
        FileNotFoundError: no file at ``path``.
        DataError: the file holds something else than a genseg checkpoint's tensors and values.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no checkpoint here; train the run first (genseg train)")
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as error:
        if "GLOBAL" in str(error):  # torch's refusal of a class or function the pickle names
            raise DataError("not a genseg checkpoint: it holds objects other than tensors and plain values, which "
                            "genseg never loads (unpickling them can run code); use a checkpoint genseg wrote",
                            path) from None
        raise DataError("cannot read this checkpoint; it is damaged or not a checkpoint: train the run again or "
                        "resume it from last.pt", path) from None
    except (RuntimeError, EOFError) as error:  # truncated or not a torch file at all
        raise DataError(f"cannot read this checkpoint ({str(error).splitlines()[0]}); it is damaged or not a "
                        "checkpoint: train the run again or resume it from last.pt", path) from None
