"""Reusable launchers for real processes under test (Electrum daemons, the regtest chain).

Each module starts real programs in throwaway directories and cleans them up even when a test
fails; see tests/harness/electrum.py for the Electrum side.
"""
