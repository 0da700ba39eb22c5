"""Make the dependencies vendored into the plugin zip importable under their own names.

WHY an import hook: kademlia, rpcudp and umsgpack import each other by their top-level names
(``from rpcudp.protocol import ...``), but Electrum's zip loader (MemoryZipImporter) mounts
only our package, as ``electrum_external_plugins.musig2_plugin``, and serves it from memory
after checking the zip's authorized hash. A sys.path entry pointing into the zip would make
Python's zipimport re-read the file from disk (the very window Electrum's loader closes) and
would answer for any name. So this finder:

* answers only for the top-level names listed in ``_vendor/vendored.json`` (and their
  submodules), never for anything else;
* is appended to the *end* of ``sys.meta_path``: a module that is installed anyway (the
  development environment has kademlia) is found first, so nothing Electrum or the user
  has is ever shadowed;
* reads the sources through our own package's loader (``get_data``), i.e. from the bytes
  Electrum already verified, never from disk again.

Without a ``_vendor`` directory (a source checkout, ``pip install -e``) nothing is installed.
"""
from __future__ import annotations

import importlib.abc
import importlib.machinery
import importlib.util
import json
import os
import sys
from typing import Any, Optional

__all__ = ["VendorFinder", "install"]

VENDOR_DIR = "_vendor"
_MAX_INDEX_BYTES = 64 * 1024


class _Loader(importlib.abc.Loader):
    """Executes a vendored module's source, read through the plugin package's loader."""

    def __init__(self, reader: Any, filename: str):
        self._reader = reader
        self._filename = filename

    def create_module(self, spec):  # default module creation
        return None

    def exec_module(self, module) -> None:
        source = self._reader.get_data(self._filename)
        exec(compile(source, self._filename, "exec", dont_inherit=True), module.__dict__)


class VendorFinder(importlib.abc.MetaPathFinder):
    """Finds ``<name>`` / ``<name>.sub`` for the vendored top-level names only."""

    def __init__(self, reader: Any, base: str, names: frozenset[str]):
        self._reader = reader   # the plugin package's loader: get_data(path) -> bytes
        self._base = base       # "<plugin package dir>/_vendor"
        self.names = names

    def _read_ok(self, path: str) -> bool:
        try:
            self._reader.get_data(path)
        except (OSError, KeyError):
            return False
        return True

    def find_spec(self, fullname: str, path=None, target=None):
        if fullname.partition(".")[0] not in self.names:
            return None
        rel = fullname.replace(".", "/")
        for filename, is_pkg in ((f"{self._base}/{rel}/__init__.py", True),
                                 (f"{self._base}/{rel}.py", False)):
            if self._read_ok(filename):
                spec = importlib.machinery.ModuleSpec(fullname, _Loader(self._reader, filename),
                                                      origin=filename, is_package=is_pkg)
                spec.has_location = True
                if is_pkg:
                    # Empty: submodules are found by this finder (meta path), not by a path scan.
                    spec.submodule_search_locations = []
                return spec
        return None


def _package_dir(package: Any) -> Optional[str]:
    filename = getattr(package, "__file__", None)
    return os.path.dirname(filename) if filename else None


def install(package: Any) -> Optional[VendorFinder]:
    """Append a VendorFinder for ``package`` (our top-level package module) if it vendors.

    Idempotent: a finder left by an earlier load of the plugin is replaced.
    """
    reader = getattr(getattr(package, "__spec__", None), "loader", None)
    pkg_dir = _package_dir(package)
    if reader is None or pkg_dir is None or not hasattr(reader, "get_data"):
        return None
    base = f"{pkg_dir}/{VENDOR_DIR}"
    try:
        raw = reader.get_data(f"{base}/vendored.json")
    except (OSError, KeyError):
        return None   # not a built zip: nothing vendored
    if len(raw) > _MAX_INDEX_BYTES:
        return None
    index = json.loads(raw)
    names = frozenset(m for p in index.get("packages", ()) for m in p.get("modules", ())
                      if isinstance(m, str) and m.isidentifier())
    # By class name: a reloaded plugin brings a new VendorFinder class.
    sys.meta_path[:] = [f for f in sys.meta_path if type(f).__name__ != "VendorFinder"
                        or getattr(f, "names", frozenset()).isdisjoint(names)]
    finder = VendorFinder(reader, base, names)
    sys.meta_path.append(finder)
    return finder
