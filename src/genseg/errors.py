"""The one exception users see for bad input data."""

from __future__ import annotations

from pathlib import Path


class DataError(ValueError):
    """Input data that genseg cannot use; the message names the file and the fix.

    Args:
        message: what is wrong and how to fix it.
        path: the offending file or folder, if there is one.
    """

    def __init__(self, message: str, path: Path | str | None = None) -> None:
        self.path = Path(path) if path is not None else None
        super().__init__(f"{path}: {message}" if path is not None else message)
