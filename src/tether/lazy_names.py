"""Names a package exports but imports only when first used: ``__getattr__ = lazy_names(...)``.

A package whose ``__init__`` imported every module it re-exports would make each command pay
for all of them (Git, the engine, the Kubernetes client) to use one constant. The package
lists where each name lives; the first use imports that module and keeps the value in the
package's namespace, so later uses are plain attribute reads.
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Callable, Mapping
from typing import Any


def lazy_names(package: str, where: Mapping[str, str]) -> Callable[[str], Any]:
    """A module ``__getattr__`` for ``package``: ``where`` maps a name to the module (full
    dotted path) that defines it."""

    def __getattr__(name: str) -> Any:
        module = where.get(name)
        if module is None:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        value = getattr(importlib.import_module(module), name)
        setattr(sys.modules[package], name, value)
        return value

    return __getattr__
