"""No public name in session/ or wallet_bridge/ is a bare ``index``.

``index`` meant a message's position in a request, a key's position among the KeySorted
signers and an input's (or output's) position. Public functions, methods and dataclass
fields of these two packages now say which (message_index, signer_index_of, input_index,
output_index). Private helpers (``_name``) may keep ``index`` with a ``section`` beside it.
The checker is shown catching a planted bare ``index`` so the tree check cannot pass silently.
"""
from __future__ import annotations

import ast
from pathlib import Path

PKG = Path(__file__).resolve().parents[1] / "musig2_plugin"
PACKAGES = ("session", "wallet_bridge")


def bare_index_names(source: str, where: str) -> list[str]:
    """Public parameters, methods and class fields named ``index`` in ``source``."""
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and not node.name.startswith("_"):
            a = node.args
            for arg in a.posonlyargs + a.args + a.kwonlyargs:
                if arg.arg == "index":
                    found.append(f"{where}:{node.lineno} {node.name}(index)")
            if node.name in ("index", "index_of"):
                found.append(f"{where}:{node.lineno} def {node.name}")
        if isinstance(node, ast.ClassDef) and not node.name.startswith("_"):
            for stmt in node.body:
                if (isinstance(stmt, ast.AnnAssign) and isinstance(stmt.target, ast.Name)
                        and stmt.target.id == "index"):
                    found.append(f"{where}:{stmt.lineno} {node.name}.index")
    return found


def test_the_checker_catches_a_planted_bare_index():
    planted = ("from dataclasses import dataclass\n"
               "def read_thing(txin, index=None):\n    return index\n"
               "def _private(index):\n    return index\n"
               "@dataclass\nclass State:\n    index: int\n"
               "class Spec:\n    def index_of(self, key):\n        return 0\n")
    assert sorted(bare_index_names(planted, "planted.py")) == [
        "planted.py:10 def index_of", "planted.py:2 read_thing(index)", "planted.py:8 State.index"]


def test_no_bare_index_in_session_and_wallet_bridge():
    found = []
    for pkg in PACKAGES:
        for path in sorted((PKG / pkg).glob("*.py")):
            found += bare_index_names(path.read_text(), f"{pkg}/{path.name}")
    assert found == []
