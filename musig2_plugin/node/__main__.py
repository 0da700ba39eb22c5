"""``python -m musig2_plugin.node``: see cli.py (nothing runs when merely imported)."""
from .cli import main

if __name__ == "__main__":
    raise SystemExit(main())
