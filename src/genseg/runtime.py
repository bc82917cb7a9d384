"""Where a run computes: the device, how many CPU threads it takes on cores it does not own, its seeds.

torch starts one thread per core in every process; two trainings side by side on two cores then
run four threads and slow each other down far more than a fair share predicts. The default here
takes the cores this process may use that are not already busy (the load average), at least one;
``OMP_NUM_THREADS`` or an explicit count wins.
"""

from __future__ import annotations

import os
import random

import numpy as np
import torch

from genseg.errors import ConfigError


def resolve_device(name: str) -> torch.device:
    """``auto`` (CUDA when present, else CPU), ``cpu``, ``cuda`` or ``cuda:N``."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name.startswith("cuda"):
        if not torch.cuda.is_available():
            raise ConfigError(f"device {name!r} asked for, but no CUDA GPU is visible; use --device cpu")
        index = torch.device(name).index
        if index is not None and index >= torch.cuda.device_count():
            raise ConfigError(f"device {name!r}: only {torch.cuda.device_count()} GPUs are visible (cuda:0..)")
    return torch.device(name)


def available_cores() -> int:
    """The cores this process may run on (its CPU affinity, else the machine's count)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # macOS and Windows have no affinity call
        return os.cpu_count() or 1


def default_threads() -> int:
    """``OMP_NUM_THREADS`` if set, else the available cores minus the busy ones, at least 1."""
    if os.environ.get("OMP_NUM_THREADS", "").isdigit():
        return max(1, int(os.environ["OMP_NUM_THREADS"]))
    try:
        busy = round(os.getloadavg()[0])
    except OSError:  # no load average on this platform
        busy = 0
    return max(1, available_cores() - busy)


def set_threads(threads: int | None = None) -> int:
    """Set torch's intra-op threads to ``threads`` (default :func:`default_threads`); returns the count."""
    count = threads if threads is not None else default_threads()
    if count < 1:
        raise ConfigError(f"threads must be at least 1, got {count}")
    torch.set_num_threads(count)
    return count


def seed_everything(seed: int) -> None:
    """Seed Python's, NumPy's and torch's global random streams."""
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
