"""The exceptions users see: bad input data and bad settings. Each message names what to fix.

The CLI prints a :class:`UserError` as one line. Any other exception is a bug (or a setting not
checked yet): the CLI says so and writes its traceback to a file it names.
"""

from __future__ import annotations

from pathlib import Path


class UserError(ValueError):
    """Something the user can fix; the message says how. A ValueError, as Python expects of bad arguments."""


class DataError(UserError):
    """Input data that genseg cannot use; the message names the file and the fix.

    Args:
        message: what is wrong and how to fix it.
        path: the offending file or folder, if there is one.
    """

    def __init__(self, message: str, path: Path | str | None = None) -> None:
        self.path = Path(path) if path is not None else None
        super().__init__(f"{path}: {message}" if path is not None else message)


class ConfigError(UserError):
    """A setting genseg cannot use (an option, a config file's value, a run folder's state), and the fix."""
