"""Packaging entry point.

The deliverable is an Electrum plugin zip, not a wheel: Electrum 4.8 loads external plugins only
from zip files in its plugins directory. `python setup.py bdist_plugin` builds it (same as
`scripts/build_plugin.py`); `pip install -e .` still works for developing the core layers.
"""
import sys
from pathlib import Path

from setuptools import Command, find_packages, setup

ROOT = Path(__file__).resolve().parent
sys.path.insert(0, str(ROOT / "scripts"))
import build_plugin  # noqa: E402  (stdlib-only builder next to the other scripts)


class BdistPlugin(Command):
    description = "build dist/musig2_plugin-<version>.zip, the Electrum plugin"
    user_options = [("dist-dir=", "d", "directory to put the zip in (default: dist)")]

    def initialize_options(self):
        self.dist_dir = None

    def finalize_options(self):
        pass

    def run(self):
        path = build_plugin.build(Path(self.dist_dir) if self.dist_dir else None)
        print(f"wrote {path}")


setup(
    name="musig2_plugin",
    version=build_plugin.read_manifest()["version"],
    description="MuSig2 (BIP-327) co-signing plugin for Electrum 4.8",
    packages=find_packages(include=["musig2_plugin", "musig2_plugin.*"]),
    package_data={"musig2_plugin": ["*.json"]},
    python_requires=">=3.11,<3.12",
    # For `pip install -e .` (development). The plugin zip needs none of these inside Electrum:
    # it vendors kademlia/rpcudp/u-msgpack-python and falls back from coincurve to electrum_ecc's
    # libsecp256k1 (docs/bundle.md).
    install_requires=["coincurve==21.0.0", "kademlia==2.2.3", "rpcudp==5.0.1",
                      "u-msgpack-python==2.8.0", "aiorpcx>=0.25,<0.26"],
    cmdclass={"bdist_plugin": BdistPlugin},
    # the standalone DHT bootstrap node (docs/network.md); also `python -m musig2_plugin.node`
    entry_points={"console_scripts": ["musig2-node = musig2_plugin.node.cli:main"]},
)
