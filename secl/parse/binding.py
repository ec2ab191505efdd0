"""The compiled tree-sitter bindings, loaded the cheap way. Its own module, with no other
secl import, so that bench/bench.py can time the same start-up floor."""

from __future__ import annotations

import os
import sys
from types import ModuleType


def binding(package: str) -> ModuleType:
    """`package._binding`, the compiled module of a tree-sitter package, loaded without running
    `package/__init__.py` when the package has its usual layout.

    Why: the two `__init__`s only re-export the bindings, but tree_sitter's imports `typing`
    (for one Protocol) and tree_sitter_c's `importlib.resources` (for query files secl never
    reads): together some 30 ms of a one-file run's start-up here. The module is registered under
    its own name, so a later `import tree_sitter` shares it. Any other layout takes the plain
    import."""
    name = f"{package}._binding"
    if name in sys.modules:
        return sys.modules[name]
    from importlib.machinery import EXTENSION_SUFFIXES, ExtensionFileLoader, ModuleSpec, PathFinder

    spec = PathFinder.find_spec(package)
    for directory in (spec.submodule_search_locations or []) if spec else []:
        for suffix in EXTENSION_SUFFIXES:
            location = os.path.join(directory, "_binding" + suffix)
            if os.path.isfile(location):
                loader = ExtensionFileLoader(name, location)
                found = ModuleSpec(name, loader, origin=location)
                module = loader.create_module(found)
                # What the import system would set, so that importlib sees a normal module.
                module.__spec__, module.__loader__, module.__file__ = found, loader, location
                module.__package__ = package
                loader.exec_module(module)
                sys.modules[name] = module
                return module
    from importlib import import_module

    return import_module(name)
