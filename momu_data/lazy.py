"""Lazy public names for a package's `__init__` (PEP 562), shared by momu_data and momu_models.

    _EXPORTS = {"name": ("package.module", "attribute"), ...}
    __getattr__, __dir__ = lazy_exports(__name__, _EXPORTS, globals())

A name is imported on first use, then bound in the package so that later lookups skip
`__getattr__`: importing the package stays cheap and needs none of the optional packages
that only some of its modules use.
"""

from __future__ import annotations

import importlib


def lazy_exports(package: str, exports: dict[str, tuple[str, str]], namespace: dict):
    """The package's `__getattr__` and `__dir__` for `exports` (name -> (module, attribute));
    `namespace` is the package's globals()."""

    def __getattr__(name: str):
        try:
            module, attr = exports[name]
        except KeyError:
            raise AttributeError(f"module {package!r} has no attribute {name!r}") from None
        value = getattr(importlib.import_module(module), attr)
        namespace[name] = value  # later lookups skip __getattr__
        return value

    def __dir__():
        return sorted(set(namespace) | set(namespace.get("__all__", ())) | set(exports))

    return __getattr__, __dir__
