"""The layer rule, checked on the source: every module's imports read with ``ast``.

docs/architecture.md states the rule; this test is what keeps it. Each package of
``musig2_plugin`` may import only the packages listed for it in ``ALLOWED`` (lower layers,
never a higher or a sibling one), only through their public face (the package itself, not one
of its modules: ``from ..records import TxType``, not ``from ..records.fields import TxType``),
and never an underscore name from another of our modules. The core layers never import
Electrum; the package ``__init__`` imports the Electrum-facing modules only when Electrum loads
it as a plugin. Every rule is shown failing on a planted violation below, so the checker cannot
silently pass everything.
"""
from __future__ import annotations

import ast
from dataclasses import dataclass
from pathlib import Path

import pytest

PKG_DIR = Path(__file__).resolve().parent.parent / "musig2_plugin"
PKG = "musig2_plugin"

# The layer of each package, bottom up; the edge is the Electrum-facing top-level modules.
RANK = {"bootstrap": -1, "foundation": 0, "crypto": 1, "records": 2, "transport": 2, "wallet_bridge": 2,
        "tor": 2, "dht": 3, "session": 3, "coordinator": 4, "app": 5, "node": 5, "edge": 6}
# What each package may import (besides itself). Same-rank packages never import each other.
ALLOWED: dict[str, frozenset[str]] = {
    "bootstrap": frozenset(),
    "foundation": frozenset(),
    "crypto": frozenset({"foundation"}),
    "records": frozenset({"foundation", "crypto"}),
    "transport": frozenset({"foundation", "crypto"}),
    "wallet_bridge": frozenset({"foundation", "crypto"}),
    # Tor support: proxy policy, SOCKS connector, control port, onion services (docs/tor.md)
    "tor": frozenset({"foundation", "crypto"}),
    "dht": frozenset({"foundation", "crypto", "records"}),
    "session": frozenset({"foundation", "crypto", "transport"}),
    "coordinator": frozenset({"foundation", "crypto", "records", "dht", "transport", "session"}),
    "app": frozenset({"foundation", "crypto", "coordinator", "wallet_bridge", "tor"}),
    # the standalone DHT node (python -m musig2_plugin.node): the core without Electrum
    "node": frozenset({"foundation", "crypto", "records", "dht", "transport", "session",
                       "coordinator"}),
    # the edge's network settings use the tor package's face (proxy policy, connector)
    "edge": frozenset({"foundation", "app", "wallet_bridge", "tor"}),
}
# Packages whose modules are each public (no __init__ face): the foundations.
MODULES_PUBLIC = frozenset({"foundation"})
# Where Electrum may be imported: the wallet bridge, the application layer, the edge.
ELECTRUM_OK = frozenset({"wallet_bridge", "app", "edge"})
# electrum_ecc (Electrum's libsecp256k1 wrapper) is also allowed to the crypto layer, which may
# bind the libsecp256k1 it ships (docs/bundle.md); ``electrum`` itself never.
ELECTRUM_ECC_OK = ELECTRUM_OK | {"crypto"}
# The edge: every module directly in musig2_plugin/ (plugin, cmdline, qt, qt_dialogs, commands,
# and any new Qt or command module placed beside them).
# ``vendor_import`` is not edge: the import hook __init__ installs first (the bundle's vendored
# kademlia), standard library only, its own layer below everything.
BOOTSTRAP_MODULES = frozenset({"vendor_import"})
EDGE_MODULES = frozenset(p.stem for p in PKG_DIR.glob("*.py")
                         if p.stem != "__init__" and p.stem not in BOOTSTRAP_MODULES)
# The package names Electrum gives a plugin it loads (see musig2_plugin/__init__.py).
ELECTRUM_GUARD = "_ELECTRUM_PLUGIN_PARENTS"


@dataclass(frozen=True)
class Violation:
    module: str
    line: int
    why: str


def package_of(parts: tuple[str, ...]) -> str:
    """``("records", "fields")`` -> records; ``("plugin",)`` -> edge; ``("__init__",)`` -> root."""
    if len(parts) == 1:
        if parts[0] in BOOTSTRAP_MODULES:
            return "bootstrap"
        return "root" if parts[0] == "__init__" else "edge"
    return parts[0]


def module_parts(path: Path) -> tuple[str, ...]:
    rel = path.relative_to(PKG_DIR).with_suffix("")
    return tuple(rel.parts)


def resolve(parts: tuple[str, ...], node: ast.ImportFrom) -> tuple[str, ...]:
    """The target (inside musig2_plugin) of a relative import, as name parts; ``()`` is the
    top-level package itself (``from .. import crypto`` then names the package imported)."""
    base = list(parts[:-1])           # the package containing the module
    up = node.level - 1
    if up > len(base):
        raise ValueError("relative import beyond the top-level package")
    base = base[:len(base) - up]
    return tuple(base) + (tuple(node.module.split(".")) if node.module else ())


def target_package(tgt: tuple[str, ...]) -> str:
    """The layer package of an import target: ``("records", "fields")`` -> records,
    ``("plugin",)`` -> edge, ``("crypto",)`` -> crypto."""
    if len(tgt) == 1 and tgt[0] not in EDGE_MODULES | BOOTSTRAP_MODULES:
        return tgt[0]
    return package_of(tgt)


def check_source(source: str, parts: tuple[str, ...]) -> list[Violation]:
    """All layer-rule violations of one module, given its source and its place in the package."""
    tree = ast.parse(source)
    name = ".".join(parts)
    src_pkg = package_of(parts)
    out: list[Violation] = []
    guarded = _guarded_lines(tree)
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                top = alias.name.split(".")[0]
                if top == PKG:
                    out.append(Violation(name, node.lineno, f"absolute import {alias.name}: "
                                         "breaks under Electrum's zip importer"))
                elif top == "electrum" and src_pkg not in ELECTRUM_OK:
                    out.append(Violation(name, node.lineno, f"{src_pkg} imports Electrum"))
                elif top == "electrum_ecc" and src_pkg not in ELECTRUM_ECC_OK:
                    out.append(Violation(name, node.lineno, f"{src_pkg} imports electrum_ecc"))
            continue
        if not isinstance(node, ast.ImportFrom):
            continue
        if node.level == 0:
            top = (node.module or "").split(".")[0]
            if top == PKG:
                out.append(Violation(name, node.lineno, f"absolute import from {node.module}"))
            elif top == "electrum" and src_pkg not in ELECTRUM_OK:
                out.append(Violation(name, node.lineno, f"{src_pkg} imports {node.module}"))
            elif top == "electrum_ecc" and src_pkg not in ELECTRUM_ECC_OK:
                out.append(Violation(name, node.lineno, f"{src_pkg} imports {node.module}"))
            continue
        target = resolve(parts, node)
        targets = [target] if target else [(a.name,) for a in node.names]
        for tgt in targets:
            out += _check_edge(name, node, src_pkg, target_package(tgt), tgt, guarded)
        # underscore names imported from another of our modules (a package's own private
        # submodules, ``from . import _cffi_lib`` inside crypto/, are its business)
        if target and target != parts and target != parts[:-1]:
            for alias in node.names:
                if alias.name.startswith("_"):
                    out.append(Violation(name, node.lineno,
                                         f"imports private {alias.name} from {'.'.join(target)}"))
    return out


def _check_edge(name, node, src_pkg, dst_pkg, tgt, guarded) -> list[Violation]:
    if src_pkg == "root":
        if dst_pkg == "edge" and node.lineno not in guarded:
            return [Violation(name, node.lineno, f"__init__ imports {'.'.join(tgt)} without "
                              "the Electrum-loaded guard: the core would load Electrum")]
        return []
    if dst_pkg == src_pkg:
        return []
    if dst_pkg not in ALLOWED.get(src_pkg, frozenset()):
        src_rank, dst_rank = RANK.get(src_pkg, -1), RANK.get(dst_pkg, 99)
        kind = ("upward" if dst_rank > src_rank else
                "sideways" if dst_rank == src_rank else "past its layer")
        return [Violation(name, node.lineno,
                          f"{kind} import: {src_pkg} -> {dst_pkg} ({'.'.join(tgt)})")]
    if len(tgt) > 1 and dst_pkg not in MODULES_PUBLIC:
        return [Violation(name, node.lineno, f"reaches into {'.'.join(tgt)}: import from "
                          f"the package {dst_pkg} (its public face) instead")]
    return []


def _guarded_lines(tree: ast.Module) -> set[int]:
    """Line numbers inside an ``if`` whose test names the Electrum-loaded guard."""
    lines: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and ELECTRUM_GUARD in ast.unparse(node.test):
            for sub in node.body:
                for inner in ast.walk(sub):
                    if hasattr(inner, "lineno"):
                        lines.add(inner.lineno)
    return lines


def all_modules() -> list[Path]:
    return sorted(p for p in PKG_DIR.rglob("*.py") if "__pycache__" not in p.parts)


def test_every_package_has_a_layer():
    packages = {package_of(module_parts(p)) for p in all_modules()} - {"root"}
    assert packages == set(ALLOWED), "a new package needs a layer in ALLOWED and RANK"
    assert set(RANK) == set(ALLOWED)


def test_the_tree_keeps_the_layering():
    violations = [v for p in all_modules() for v in check_source(p.read_text(), module_parts(p))]
    assert violations == [], "\n".join(f"{v.module}:{v.line}: {v.why}" for v in violations)


# Planted violations: the checker must catch each one (else the test above proves nothing).
@pytest.mark.parametrize("parts, source, expected", [
    # a crypto module importing the coordinator: upward
    (("crypto", "musig"), "from ..coordinator import Musig2Node\n", "upward import: crypto -> coordinator"),
    # the session importing the coordinator's payload module: upward
    (("session", "spec"), "from ..coordinator.payload import RequestPayload\n", "upward import"),
    # dht importing transport: a sibling of its own layer's neighbour, not in its list
    (("dht", "node"), "from ..transport import Transport\n", "past its layer"),
    # the edge reaching past the application layer into records
    (("qt",), "from .records import TxType\n", "past its layer import: edge -> records"),
    # the coordinator reaching into a session module instead of the package
    (("coordinator", "node"), "from ..session.spec import SessionSpec\n", "reaches into session.spec"),
    # a private helper of another module
    (("crypto", "musig"), "from .bip340 import _keypair\n", "imports private _keypair"),
    # Electrum in a core layer (direct and as a dotted import)
    (("records", "base"), "from electrum.bitcoin import b\n", "records imports electrum.bitcoin"),
    (("session", "spec"), "from electrum_ecc import ecc_fast\n", "session imports electrum_ecc"),
    (("crypto", "secp"), "from electrum.util import x\n", "crypto imports electrum.util"),
    # the standalone node is the core without Electrum: never the application layer
    (("node", "service"), "from ..app import WalletCosigner\n", "sideways import: node -> app"),
    (("dht", "node"), "import electrum.wallet\n", "dht imports Electrum"),
    # an absolute import of our own package (breaks under Electrum's zip importer)
    (("session", "spec"), "from musig2_plugin.crypto import key_sort\n", "absolute import"),
    # __init__ importing the commands without the guard
    (("__init__",), "from . import commands\n", "without the Electrum-loaded guard"),
    # the bootstrap import hook runs before everything: it imports none of our layers
    (("vendor_import",), "from .foundation import constants\n", "upward import: bootstrap -> foundation"),
])
def test_planted_violations_are_caught(parts, source, expected):
    found = check_source(source, parts)
    assert len(found) == 1 and expected in found[0].why, found


@pytest.mark.parametrize("parts, source", [
    (("crypto", "musig"), "from ..foundation.constants import MAX_SIGNERS\n"),
    (("coordinator", "node"), "from ..session import SessionSpec\nfrom .payload import X\n"),
    (("app", "cosign"), "from ..coordinator import Musig2Node\nimport electrum\n"),
    (("qt",), "from .app import cosign\nfrom .plugin import Musig2Plugin\n"),
    (("__init__",), "if _parent in _ELECTRUM_PLUGIN_PARENTS:\n    from . import commands\n"),
    (("__init__",), "from . import vendor_import as _vendor_import\n"),
])
def test_allowed_imports_pass(parts, source):
    assert check_source(source, parts) == []


# --- state names: the enums, never string literals, in the edge and the application layer ----
STATE_WORDS = frozenset({"pending", "refused", "approved", "signed", "broadcast", "failed",
                         "creator", "cosigner", "received", "joined", "ready", "round1", "round2"})
STATE_CHECKED = ("plugin", "qt", "qt_dialogs", "commands", "cmdline")


def state_literals(source: str) -> list[int]:
    """Lines comparing something with a request-state word written as a string literal."""
    lines = []
    for node in ast.walk(ast.parse(source)):
        if not isinstance(node, ast.Compare):
            continue
        if all(isinstance(o, (ast.In, ast.NotIn)) for o in node.ops):
            # ``x in ("pending", ...)`` compares states; ``"refused" in status`` is a key lookup
            operands = [c for c in node.comparators if isinstance(c, (ast.Tuple, ast.List, ast.Set))]
        else:
            operands = [node.left, *node.comparators]
        for op in operands:
            elts = op.elts if isinstance(op, (ast.Tuple, ast.List, ast.Set)) else [op]
            if any(isinstance(e, ast.Constant) and e.value in STATE_WORDS for e in elts):
                lines.append(node.lineno)
                break
    return lines


def test_no_request_state_literal_in_the_edge():
    found = {name: state_literals((PKG_DIR / f"{name}.py").read_text()) for name in STATE_CHECKED}
    found["app.cosign"] = state_literals((PKG_DIR / "app" / "cosign.py").read_text())
    assert {k: v for k, v in found.items() if v} == {}


@pytest.mark.parametrize("source", [
    'if state.status == "pending":\n    pass\n',
    'ok = what in ("broadcast", "failed")\n',
    'x = "signed" != s.status\n',
])
def test_planted_state_literal_is_caught(source):
    assert state_literals(source) == [1]


def test_enum_comparisons_pass():
    assert state_literals("if state.status == RequestStatus.PENDING:\n    pass\n") == []
    assert state_literals('if "refused" in status:\n    pass\n') == []      # a dict key


# --- the thin edge: no reaching into the node or into Electrum's private PSBT fields ----------
def edge_reaches(source: str) -> list[str]:
    """``x.cosigner(w).node`` / ``cosigner.node`` (the coordinator node behind the service) and
    ``._unknown`` (Electrum's private PSBT map) in an edge module: the app API is the way."""
    found = []
    for node in ast.walk(ast.parse(source)):
        if not isinstance(node, ast.Attribute):
            continue
        if node.attr == "_unknown":
            found.append(f"{node.lineno}: ._unknown")
        elif node.attr == "node":
            base = node.value.func if isinstance(node.value, ast.Call) else node.value
            name = base.attr if isinstance(base, ast.Attribute) else getattr(base, "id", "")
            if "cosigner" in name:
                found.append(f"{node.lineno}: {name}.node")
    return found


def test_the_edge_does_not_reach_into_the_node_or_psbt_internals():
    found = {p.stem: edge_reaches(p.read_text()) for p in PKG_DIR.glob("*.py")
             if p.stem in EDGE_MODULES}
    assert {k: v for k, v in found.items() if v} == {}


@pytest.mark.parametrize("source, expected", [
    ("ads = await plugin.cosigner(wallet).node.find_available_signers()\n", "cosigner.node"),
    ("c = self.cosigners[k]\nn = cosigner.node\n", "cosigner.node"),
    ("for k, v in b._unknown.items():\n    pass\n", "._unknown"),
])
def test_planted_edge_reaches_are_caught(source, expected):
    assert [r.split(": ", 1)[1] for r in edge_reaches(source)] == [expected]
