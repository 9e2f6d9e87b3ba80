"""No class in zsync exposes more than 25 public methods (issue 24): a class that knows every
statement, or every step, is split into small objects with one job each."""

from __future__ import annotations

import importlib
import inspect
import pkgutil
from types import FunctionType

import zsync

LIMIT = 25


def public_methods(cls: type) -> set[str]:
    """The public methods (functions, class and static methods, properties) a class offers,
    its own and those it inherits from zsync's classes; what Python or a library gives every
    class (``str``'s methods on a StrEnum, ``Exception``'s) does not count."""
    names: set[str] = set()
    for klass in cls.__mro__:
        if not klass.__module__.startswith("zsync"):
            continue
        for name, member in vars(klass).items():
            if name.startswith("_"):
                continue
            if isinstance(member, FunctionType | classmethod | staticmethod | property):
                names.add(name)
    return names


def zsync_classes() -> dict[str, type]:
    """Every class defined in a module of the zsync package, by its qualified name."""
    found: dict[str, type] = {}
    for info in pkgutil.walk_packages(zsync.__path__, "zsync."):
        module = importlib.import_module(info.name)
        for _name, cls in inspect.getmembers(module, inspect.isclass):
            if cls.__module__ == module.__name__:
                found[f"{module.__name__}.{cls.__qualname__}"] = cls
    return found


def test_the_walk_finds_every_layer() -> None:
    """The walk reaches the ledger, the engine and the command line (a walk that found
    nothing would pass the limit below)."""
    modules = {name.rsplit(".", 1)[0] for name in zsync_classes()}
    assert any(m.startswith("zsync.ledger") for m in modules)
    assert any(m.startswith("zsync.cli") for m in modules)
    assert any(m.startswith("zsync.emulator") for m in modules)


def test_no_class_exposes_more_than_25_public_methods() -> None:
    """The ledger was one class of 57 (five mixins): now a handle and small table objects."""
    sizes = {name: len(public_methods(cls)) for name, cls in zsync_classes().items()}
    over = sorted((n, name) for name, n in sizes.items() if n > LIMIT)
    assert not over, f"classes over {LIMIT} public methods: {over}"
