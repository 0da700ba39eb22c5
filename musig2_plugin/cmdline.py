"""Entry point Electrum loads for the daemon and the command line (gui name ``cmdline``)."""
from .plugin import Musig2Plugin


class Plugin(Musig2Plugin):
    """No command-line specific behaviour yet: the commands live in ``commands.py``."""
