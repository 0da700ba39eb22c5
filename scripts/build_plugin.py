#!/usr/bin/env python3
"""Build the installable Electrum plugin zip: dist/musig2_plugin-<version>.zip.

Layout (what Electrum 4.8's Plugins.read_manifest / MemoryZipImporter read):

    musig2_plugin/manifest.json      <- the repo's top-level manifest.json
    musig2_plugin/__init__.py        <- executed first; registers the plugin commands
    musig2_plugin/plugin.py, cmdline.py, qt.py, ... and the core sub-packages
    musig2_plugin/_vendor/<module>/...  <- pure-Python dependencies Electrum's bundles lack
    musig2_plugin/_vendor/licenses/<dist>-<version>/...  their license files
    musig2_plugin/_vendor/vendored.json  what was vendored (name, version, license, modules)

The vendored packages are copied at build time from the distributions installed in the
interpreter that runs the build (the project's .venv, pinned in requirements.txt); the repository
holds no copy of them. musig2_plugin/vendor_import.py makes them importable under their own names
from inside the zip (docs/bundle.md says why an import hook and not a sys.path entry).

The zip is deterministic (sorted members, fixed timestamps and permissions): the same source gives
the same bytes, hence the same sha256, and Electrum's authorization (a signature over that hash)
stays valid across rebuilds of unchanged code.

Usage: .venv/bin/python scripts/build_plugin.py [--out DIR]   (also: python setup.py bdist_plugin)
Only the standard library is used, so any Python 3.11 can build it.
"""
from __future__ import annotations

import argparse
import json
import sys
import zipfile
from importlib import metadata
from pathlib import Path, PurePosixPath

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = "musig2_plugin"
# 1980-01-01, the earliest time a zip can hold: a fixed stamp keeps the bytes reproducible.
FIXED_TIME = (1980, 1, 1, 0, 0, 0)
# What goes in: Python sources and data files of the package; never caches or editor droppings.
INCLUDED_SUFFIXES = {".py", ".json", ".png", ".svg", ".txt"}


# Distributions the plugin imports that Electrum does not ship (Electrum's own runtime
# dependencies -- aiorpcx, cryptography, electrum_ecc, ... -- are never vendored: the zip must not
# shadow anything Electrum ships). kademlia needs rpcudp, which needs u-msgpack-python.
VENDORED_DISTS = ("kademlia", "rpcudp", "u-msgpack-python")
VENDOR_DIR = "_vendor"
LICENSE_PREFIXES = ("LICENSE", "LICENCE", "COPYING", "NOTICE")


class BuildError(Exception):
    """The source tree cannot make a valid plugin (bad manifest, missing package)."""


def read_manifest(root: Path = ROOT) -> dict:
    """Load and check the manifest the way Electrum will, minus Electrum itself.

    We check the fields Electrum's PluginMetadata refuses (name must be an identifier equal to
    the package name, available_for a list of strings, versions dotted numbers) so that a bad
    manifest fails here, loudly, rather than being skipped silently by Electrum at load time.
    """
    path = root / "manifest.json"
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as e:
        raise BuildError(f"cannot read {path}: {e}") from e
    if not isinstance(data, dict):
        raise BuildError(f"{path}: not a JSON object")
    if data.get("name") != PACKAGE:
        raise BuildError(f"{path}: name must be {PACKAGE!r}, got {data.get('name')!r}")
    for key in ("fullname", "description", "author", "version", "min_electrum_version"):
        if not isinstance(data.get(key), str) or not data[key]:
            raise BuildError(f"{path}: {key!r} must be a non-empty string")
    avail = data.get("available_for")
    if not (isinstance(avail, list) and all(isinstance(x, str) for x in avail)
            and {"qt", "cmdline"} <= set(avail)):
        raise BuildError(f"{path}: available_for must list at least 'qt' and 'cmdline', got {avail!r}")
    for key in ("version", "min_electrum_version", "max_electrum_version"):
        v = data.get(key)
        if v is not None and not all(part.isdigit() for part in str(v).split(".")):
            raise BuildError(f"{path}: {key!r} must be a dotted version like 1.2.3, got {v!r}")
    return data


def plugin_files(root: Path = ROOT) -> list[Path]:
    """Files of the package that belong in the zip, sorted for a stable order."""
    pkg = root / PACKAGE
    if not (pkg / "__init__.py").is_file():
        raise BuildError(f"{pkg}/__init__.py is missing")
    files = []
    for p in pkg.rglob("*"):
        rel = p.relative_to(pkg)
        if any(part == "__pycache__" or part.startswith(".") for part in rel.parts):
            continue
        if p.is_file() and p.suffix in INCLUDED_SUFFIXES and rel.as_posix() != "manifest.json":
            files.append(p)
    return sorted(files, key=lambda p: p.relative_to(pkg).as_posix())


def _license_of(dist: metadata.Distribution) -> str:
    """The dist's declared license: the License field, else its OSI classifier's last part."""
    meta = dist.metadata
    text = (meta.get("License-Expression") or meta.get("License") or "").strip()
    if text and "\n" not in text and len(text) <= 40:
        return text
    for classifier in meta.get_all("Classifier") or ():
        if classifier.startswith("License :: "):
            return classifier.rsplit(" :: ", 1)[-1]
    return "see license file"


def vendored_files(dists: tuple[str, ...] = VENDORED_DISTS) -> tuple[list[tuple[str, bytes]], dict]:
    """(archive path relative to the package, bytes) of every vendored file, and the summary.

    Only the dists' importable Python sources (their tests excluded) and their license files are
    taken. A dist that is not installed here is a build error naming it: the zip must never be
    built without a dependency the binary bundles lack.
    """
    files: list[tuple[str, bytes]] = []
    summary = {"note": "pure-Python dependencies Electrum does not ship; imported through "
                       "musig2_plugin/vendor_import.py", "packages": []}
    for name in dists:
        try:
            dist = metadata.distribution(name)
        except metadata.PackageNotFoundError:
            raise BuildError(f"{name} is not installed in {sys.executable}; build with the "
                             "project's .venv/bin/python (scripts/bootstrap.sh installs it)") from None
        version = dist.version
        modules, licenses = set(), []
        for rel in dist.files or ():
            path = PurePosixPath(rel.as_posix())
            top = path.parts[0]
            if top.endswith(".dist-info"):
                if path.name.upper().startswith(LICENSE_PREFIXES):
                    data = Path(dist.locate_file(rel)).read_bytes()
                    arc = f"{VENDOR_DIR}/licenses/{dist.metadata['Name']}-{version}/{path.name}"
                    files.append((arc, data))
                    licenses.append(arc)
                continue
            if path.suffix != ".py" or "__pycache__" in path.parts or top.endswith(".data"):
                continue
            if len(path.parts) > 1 and path.parts[1] == "tests":
                continue  # the dist's own test suite is not needed at run time
            modules.add(top[:-3] if top.endswith(".py") else top)
            files.append((f"{VENDOR_DIR}/{path.as_posix()}", Path(dist.locate_file(rel)).read_bytes()))
        if not licenses:
            raise BuildError(f"{name} {version} has no license file in its dist-info; refusing to "
                             "ship it without one")
        summary["packages"].append({"name": dist.metadata["Name"], "version": version,
                                    "license": _license_of(dist), "modules": sorted(modules),
                                    "license_files": sorted(licenses)})
    return sorted(files), summary


def _add(zf: zipfile.ZipFile, arcname: str, data: bytes) -> None:
    info = zipfile.ZipInfo(arcname, date_time=FIXED_TIME)
    info.compress_type = zipfile.ZIP_DEFLATED
    info.external_attr = 0o644 << 16
    zf.writestr(info, data)


def build(out_dir: Path | None = None, root: Path = ROOT, *, vendor: bool = True) -> Path:
    """Write the zip and return its path. Written to a temp name first, then renamed.

    ``vendor=False`` leaves out the vendored dependencies (for tests that need the bare plugin).
    """
    manifest = read_manifest(root)
    vendored, summary = vendored_files() if vendor else ([], None)
    out_dir = Path(out_dir) if out_dir is not None else root / "dist"
    out_dir.mkdir(parents=True, exist_ok=True)
    target = out_dir / f"{PACKAGE}-{manifest['version']}.zip"
    tmp = target.with_name(target.name + ".tmp")
    with zipfile.ZipFile(tmp, "w") as zf:
        _add(zf, f"{PACKAGE}/manifest.json", (root / "manifest.json").read_bytes())
        for f in plugin_files(root):
            _add(zf, f"{PACKAGE}/{f.relative_to(root / PACKAGE).as_posix()}", f.read_bytes())
        for arc, data in vendored:
            _add(zf, f"{PACKAGE}/{arc}", data)
        if summary is not None:
            _add(zf, f"{PACKAGE}/{VENDOR_DIR}/vendored.json",
                 (json.dumps(summary, indent=1, sort_keys=True) + "\n").encode())
    tmp.replace(target)
    return target


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", type=Path, default=None, help="output directory (default: dist/)")
    args = ap.parse_args(argv)
    try:
        path = build(args.out)
    except BuildError as e:
        print(f"build_plugin: ERROR: {e}", file=sys.stderr)
        return 1
    print(path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
