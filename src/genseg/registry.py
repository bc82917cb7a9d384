"""One registry type for every plug-in point: methods, generator kinds, segmenters, upper-level
variables, augmentation presets and benchmark executors.

An entry is a name, where its implementation lives (``"module:attribute"``, imported on first
use) and, where it has settings, where its ``Options`` dataclass lives (a module without torch).
Config validation, the CLI's help, "did you mean" and the benchmark's variants all read the
registries, so reading a config never imports torch, and adding a plug-in is its class and one
line (or one :meth:`Registry.register` call from outside the package).

Example:
    >>> from genseg.plugins import METHODS
    >>> "augment" in METHODS, METHODS.load("augment").__name__
    (True, 'Augment')
"""

from __future__ import annotations

import difflib
from dataclasses import asdict, dataclass, fields, is_dataclass
from importlib import import_module
from typing import Any

from genseg.errors import ConfigError


@dataclass(frozen=True)
class Entry:
    """A registered plug-in: where it lives and where its settings are declared."""

    name: str
    target: Any
    """``"module:attribute"`` of the implementation, or the implementation itself."""
    options: Any = None
    """``"module:attribute"`` of its ``Options`` dataclass (torch-free), the class itself, or None
    if it has no settings."""


class Registry:
    """Named plug-ins of one kind, loaded lazily.

    Args:
        kind: what an entry is, for messages ("method", "segmenter", ...).
        entries: name -> target, or name -> (target, options).
    """

    def __init__(self, kind: str, entries: dict[str, str | tuple[str, str]]) -> None:
        self.kind = kind
        self._entries: dict[str, Entry] = {}
        for name, value in entries.items():
            target, options = (value, None) if isinstance(value, str) else value
            self.register(name, target, options)

    def register(self, name: str, target: Any, options: Any = None) -> None:
        """Add a plug-in: paths ``"module:attribute"`` (imported on first use), or the objects
        themselves (a plug-in defined in a script or a test). A name already taken is refused."""
        if name in self._entries:
            raise ConfigError(f"{self.kind} {name!r} is registered already")
        for path in (target, options):
            if isinstance(path, str) and ":" not in path:
                raise ConfigError(f"{self.kind} {name!r}: {path!r} must be 'module:attribute'")
        self._entries[name] = Entry(name, target, options)

    def unregister(self, name: str) -> None:
        """Remove a plug-in (tests that register one clean up with this)."""
        self.entry(name)
        del self._entries[name]

    @property
    def names(self) -> tuple[str, ...]:
        """The registered names, in registration order."""
        return tuple(self._entries)

    def __contains__(self, name: object) -> bool:
        return name in self._entries

    def __iter__(self):  # noqa: ANN204 - an iterator of names
        return iter(self._entries)

    def entry(self, name: str) -> Entry:
        """The entry of ``name``.

        Raises:
            ValueError: an unknown name, with the registered ones and the closest.
        """
        if name in self._entries:
            return self._entries[name]
        close = difflib.get_close_matches(str(name), self.names, n=1)
        hint = f"; did you mean {close[0]!r}?" if close else ""
        raise ConfigError(f"unknown {self.kind} {name!r}; available: {', '.join(self.names)}{hint}")

    def load(self, name: str) -> Any:
        """The implementation of ``name`` (its module imported now)."""
        return _resolve(self.entry(name).target)

    def options_class(self, name: str) -> type | None:
        """The ``Options`` dataclass of ``name``, or None if it takes no settings."""
        return _resolve(self.entry(name).options)

    def check_options(self, name: str, options: dict[str, Any]) -> Any:
        """``options`` made into ``name``'s ``Options`` (which checks their values).

        Raises:
            ValueError: an unknown name, a setting it does not have, or a value it refuses.
        """
        options_class = self.options_class(name)
        accepted = [f.name for f in fields(options_class)] if options_class is not None else []
        unknown = sorted(set(options) - set(accepted))
        if unknown:
            raise ConfigError(f"unknown setting(s) {unknown} for {self.kind} {name!r}; "
                             f"accepted: {', '.join(accepted) or 'none'}")
        return None if options_class is None else options_class(**options)


def options_dict(options: Any) -> dict[str, Any]:
    """The settings of an ``Options`` instance as a plain dict (empty for None)."""
    return asdict(options) if is_dataclass(options) else {}


def _resolve(path: Any) -> Any:
    if not isinstance(path, str):
        return path
    module, attribute = path.split(":")
    return getattr(import_module(module), attribute)
