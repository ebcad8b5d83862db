"""Load pickles that may only contain numpy arrays and plain containers.

Datasets such as AIST++ ship their keypoints as pickles, and a pickle can run any code
on load (its REDUCE opcode calls whatever global it names). ``safe_load`` uses an
Unpickler whose ``find_class`` resolves only an explicit allow-list of callables, enough
to rebuild numpy arrays, numpy scalars and dtypes and builtin containers, and refuses
every other global before anything is called. Nothing outside the allow-list is ever
imported, so a refused pickle executes no code of its own.

What this does not defend against: a pickle that is merely huge (memory exhaustion).
"""

from __future__ import annotations

import _compat_pickle
import builtins
import collections
import importlib
import io
import os
import pickle
from pathlib import Path


class UnsafePickleError(pickle.UnpicklingError):
    """The pickle names a global outside the allow-list; the message names it."""


def _latin1_encode(obj, encoding="utf-8", errors="strict"):
    # Protocol 2 has no bytes opcode, so Python 3 writes bytes as
    # _codecs.encode(text, "latin1"); numpy's array payloads arrive that way. Only that
    # exact use is honoured: other codecs are transforms we have no reason to run.
    if not isinstance(obj, str) or encoding not in ("latin1", "latin-1"):
        raise UnsafePickleError(f"refused _codecs.encode with encoding {encoding!r}")
    return obj.encode("latin1", errors)


# Builtins that only construct plain values from plain arguments.
_SAFE_BUILTINS = (
    "dict",
    "list",
    "tuple",
    "set",
    "frozenset",
    "int",
    "float",
    "complex",
    "bool",
    "str",
    "bytes",
    "bytearray",
    "slice",
    "range",
)

# numpy callables used by ndarray/dtype/scalar pickling, by (submodule, name). numpy 2
# writes "numpy._core.*", numpy 1.x "numpy.core.*"; both spellings are accepted and
# resolved in whichever package the installed numpy has.
_NUMPY_CORE = {
    ("multiarray", "_reconstruct"),  # ndarray.__reduce__ (protocols 2-4)
    ("multiarray", "scalar"),  # numpy scalars (np.float32(1.0), ...)
    ("numeric", "_frombuffer"),  # ndarray.__reduce_ex__(5) for contiguous arrays
}
_NUMPY_TOP = {"ndarray", "dtype"}


def _numpy_core(submodule: str, name: str):
    # Import only fixed numpy modules; the try order avoids numpy 2's deprecation warning
    # for numpy.core, and numpy 1.26's partial numpy._core stub falls back to numpy.core.
    for pkg in ("numpy._core", "numpy.core"):
        try:
            mod = importlib.import_module(f"{pkg}.{submodule}")
        except ImportError:
            continue
        if hasattr(mod, name):
            return getattr(mod, name)
    raise UnsafePickleError(f"numpy has no {submodule}.{name}")


def _resolve(module: str, name: str):
    """The allowed object for (module, name), or None when it is not allowed."""
    if module == "builtins":
        return getattr(builtins, name) if name in _SAFE_BUILTINS else None
    if module == "collections" and name == "OrderedDict":
        return collections.OrderedDict
    if module == "_codecs" and name == "encode":
        return _latin1_encode
    if module == "numpy" and name in _NUMPY_TOP:
        import numpy

        return getattr(numpy, name)
    for pkg in ("numpy.core.", "numpy._core."):
        if module.startswith(pkg) and (module[len(pkg) :], name) in _NUMPY_CORE:
            return _numpy_core(module[len(pkg) :], name)
    return None


class SafeUnpickler(pickle.Unpickler):
    """An Unpickler that only rebuilds numpy arrays and plain containers."""

    def find_class(self, module, name):
        # Protocols 0-2 name globals as Python 2 did (__builtin__.xrange for range), and
        # Python 3 writes them that way too; map them back as pickle's own find_class does.
        if (module, name) in _compat_pickle.NAME_MAPPING:
            module, name = _compat_pickle.NAME_MAPPING[(module, name)]
        elif module in _compat_pickle.IMPORT_MAPPING:
            module = _compat_pickle.IMPORT_MAPPING[module]
        obj = _resolve(module, name)
        if obj is None:
            raise UnsafePickleError(
                f"refused to load {module}.{name}: only numpy arrays and plain containers are allowed"
            )
        return obj

    def persistent_load(self, pid):
        raise UnsafePickleError("refused a persistent id: not a plain data pickle")


def safe_load(path_or_file, encoding: str = "ASCII"):
    """Unpickle a path, binary file object or bytes, restricted to numpy arrays and containers.

    encoding is passed to the Unpickler; use "latin1" for Python 2 pickles of numpy arrays.
    Raises UnsafePickleError (a pickle.UnpicklingError) for a disallowed global.
    """
    if isinstance(path_or_file, (str, os.PathLike)):
        with open(Path(path_or_file), "rb") as f:
            return SafeUnpickler(f, encoding=encoding).load()
    if isinstance(path_or_file, (bytes, bytearray)):
        return SafeUnpickler(io.BytesIO(path_or_file), encoding=encoding).load()
    return SafeUnpickler(path_or_file, encoding=encoding).load()
