"""One owner per folder: an OS lock held while a process writes a run or a benchmark.

``fcntl.flock`` locks belong to the open file: the OS drops them when the process ends, however
it ends, so a killed process never leaves a stale lock behind (a lock file does stay, empty).
"""

from __future__ import annotations

import fcntl
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from genseg.errors import ConfigError


@contextmanager
def owned(folder: Path, name: str, busy: str) -> Iterator[None]:
    """Hold ``folder`` for this process while the block runs.

    Args:
        folder: the folder (created if needed).
        name: the lock file's name inside it (hidden, e.g. ``.train.lock``).
        busy: the error message when another process holds it.

    Raises:
        ValueError: another process holds the folder.
    """
    folder.mkdir(parents=True, exist_ok=True)
    with (folder / name).open("a") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise ConfigError(busy) from None
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)
