"""The package's rooms (top-level modules and sub-packages) import each other without a circle, and
the plug-in registries sit below all of them."""

from __future__ import annotations

import ast
from collections.abc import Iterator
from graphlib import CycleError, TopologicalSorter
from pathlib import Path

import pytest

import genseg

PACKAGE = Path(genseg.__file__).parent


def _module_name(path: Path, package: Path) -> str:
    parts = path.relative_to(package.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _room(module: str) -> str:
    """``genseg.methods.upper`` -> ``genseg.methods``; ``genseg.config`` -> itself."""
    return ".".join(module.split(".")[:2])


def _runtime_imports(path: Path, module: str) -> Iterator[str]:
    """The genseg modules ``module`` (at ``path``) imports, at module level or inside functions
    (a lazy import is a circle deferred, not removed), outside ``if TYPE_CHECKING:``."""
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    tree = ast.parse(path.read_text())
    type_checking = {id(inner) for node in ast.walk(tree)
                     if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test)
                     for inner in ast.walk(node)}
    for node in ast.walk(tree):
        if id(node) in type_checking:
            continue
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = package.split(".")[: len(package.split(".")) - node.level + 1] if node.level else []
            names = [".".join([*base, node.module] if node.module else base)]
        else:
            continue
        yield from (name for name in names if name.startswith("genseg"))


def _room_graph(package: Path = PACKAGE) -> dict[str, set[str]]:
    graph: dict[str, set[str]] = {}
    for path in package.rglob("*.py"):
        module = _module_name(path, package)
        room = _room(module)
        graph.setdefault(room, set()).update(
            _room(name) for name in _runtime_imports(path, module) if _room(name) not in (room, "genseg"))
    return graph


def _import_order(graph: dict[str, set[str]]) -> list[str]:
    """The rooms, each after those it imports; an AssertionError that names a circle."""
    try:
        return list(TopologicalSorter(graph).static_order())
    except CycleError as error:
        raise AssertionError(f"an import circle between rooms: {' -> '.join(error.args[1])}") from None


def test_the_rooms_import_each_other_without_a_circle() -> None:
    order = _import_order(_room_graph())
    assert order.index("genseg.plugins") < order.index("genseg.config") < order.index("genseg.training")


def test_the_registries_import_nothing_but_the_registry_type() -> None:
    assert _room_graph()["genseg.plugins"] == {"genseg.registry"}


def test_a_circle_through_a_sub_package_is_found_and_type_checking_imports_are_not(tmp_path: Path) -> None:
    package = tmp_path / "genseg"
    (package / "methods").mkdir(parents=True)
    (package / "__init__.py").write_text("")
    (package / "methods" / "__init__.py").write_text("")
    (package / "config.py").write_text("from genseg.methods import REGISTRY\n")
    (package / "runs.py").write_text("if TYPE_CHECKING:\n    from genseg.methods.separate import Separate\n")
    (package / "methods" / "separate.py").write_text("from ..runs import RunPaths\nfrom . import other\n")
    assert _import_order(_room_graph(package))  # runs -> methods is for type checkers only
    (package / "runs.py").write_text("def load():\n    import genseg.config\n")  # lazy, still a circle
    with pytest.raises(AssertionError, match="an import circle"):
        _import_order(_room_graph(package))
