"""Every process the test harness starts goes through here, so that it can always be stopped.

Why a registry of our own: a test that fails, a Ctrl-C, a SIGTERM from CI or a forgotten
``stop()`` must not leave a bitcoind, an ElectrumX or an Electrum daemon running (they hold ports
and directories the next run wants).  Each child is started in a new session (its own process
group), recorded by pid, and stopped by pid/process group from, in order of preference: the
owner's ``stop()``, a pytest finalizer, a SIGTERM/SIGHUP handler, or ``atexit``.

A SIGKILL of the test runner runs none of that, so each runner also keeps a registry file (one per
runner, in ``$MUSIG2_HARNESS_REGISTRY``, default ``<cache>/harness-live``) listing its children and
directories; the next runner that starts anything first sweeps the files of runners that are gone,
killing what they left (by pid and start time) and removing their directories.

When ``MUSIG2_HARNESS_PIDLOG`` names a file, each started process is appended to it as
``proc<TAB>pid<TAB>starttime<TAB>name`` and each throwaway directory as ``dir<TAB>path``, so that
a test can later prove that none of them outlived its run (the start time, from /proc, tells a
reused pid from ours).
"""

from __future__ import annotations

import atexit
import os
import shutil
import signal
import subprocess
import threading
from pathlib import Path
from typing import IO, Callable, Mapping, Sequence

PIDLOG_ENV = "MUSIG2_HARNESS_PIDLOG"

_live: dict[int, tuple[str, subprocess.Popen]] = {}
_lock = threading.RLock()  # re-entrant: the signal handler may run while the main thread holds it
_handlers_installed = False
_signals_installed = False
_previous_handlers: dict[int, object] = {}
REGISTRY_ENV = "MUSIG2_HARNESS_REGISTRY"
_registry_file: Path | None = None


def proc_starttime(pid: int) -> int | None:
    """Start time (clock ticks since boot) of ``pid``, or None when no such process exists.

    A zombie counts as gone: it runs nothing and holds no port or file.
    """
    try:
        raw = Path(f"/proc/{pid}/stat").read_text()
    except (FileNotFoundError, ProcessLookupError):
        return None
    # The command name (field 2) may contain spaces and parentheses: split after the last ')'.
    fields = raw[raw.rindex(")") + 2:].split()
    if fields[0] in ("Z", "X"):
        return None
    return int(fields[19])


def is_alive(pid: int, starttime: int | None = None) -> bool:
    """True when ``pid`` runs and (if given) is still the process that started at ``starttime``."""
    current = proc_starttime(pid)
    if current is None:
        return False
    return starttime is None or current == starttime


def _log_line(*fields: object) -> None:
    log = os.environ.get(PIDLOG_ENV)
    if not log:
        return
    with open(log, "a", encoding="utf-8") as fh:
        fh.write("\t".join(str(f) for f in fields) + "\n")


def _record(pid: int, name: str) -> None:
    start = proc_starttime(pid)
    _log_line("proc", pid, start, name)
    _registry_line("proc", pid, start, name)


def read_pidlog(path: str | os.PathLike[str]) -> tuple[list[tuple[int, int | None, str]], list[str]]:
    """The processes ``(pid, starttime, name)`` and directories a harness run recorded."""
    processes: list[tuple[int, int | None, str]] = []
    dirs: list[str] = []
    for line in Path(path).read_text(encoding="utf-8").splitlines():
        kind, *rest = line.split("\t")
        if kind == "proc":
            pid, start, name = rest
            processes.append((int(pid), None if start == "None" else int(start), name))
        elif kind == "dir":
            dirs.append(rest[0])
    return processes, dirs


def spawn(
    name: str,
    argv: Sequence[str],
    *,
    env: Mapping[str, str] | None = None,
    cwd: str | os.PathLike[str] | None = None,
    log: IO[bytes] | None = None,
) -> subprocess.Popen:
    """Start ``argv`` in its own process group, registered for clean-up; output goes to ``log``."""
    _install_handlers()
    proc = subprocess.Popen(
        list(argv),
        env=dict(env) if env is not None else None,
        cwd=cwd,
        stdin=subprocess.DEVNULL,
        stdout=log if log is not None else subprocess.DEVNULL,
        stderr=subprocess.STDOUT if log is not None else subprocess.DEVNULL,
        start_new_session=True,
        close_fds=True,
    )
    with _lock:
        _live[proc.pid] = (name, proc)
    _record(proc.pid, name)
    return proc


def _signal_group(pgid: int, sig: int) -> None:
    try:
        os.killpg(pgid, sig)
    except (ProcessLookupError, PermissionError):
        pass


def stop(proc: subprocess.Popen, timeout: float = 10.0) -> int | None:
    """Stop ``proc`` and everything in its process group: SIGTERM, then SIGKILL after ``timeout``.

    Returns the exit status.  Safe to call twice.
    """
    if proc.poll() is None:
        _signal_group(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            _signal_group(proc.pid, signal.SIGKILL)
            proc.wait()
    # Helpers it forked into the same group must not outlive it either.
    _signal_group(proc.pid, signal.SIGKILL)
    with _lock:
        _live.pop(proc.pid, None)
    return proc.returncode


_cleanups: list[Callable[[], None]] = []


def add_cleanup(fn: Callable[[], None]) -> None:
    """Run ``fn`` in :func:`stop_all` (exit, SIGTERM/SIGHUP, pytest's end), after the processes
    are stopped: for resources that are not processes, such as the test network's namespaces."""
    _install_handlers()
    with _lock:
        _cleanups.append(fn)


def remove_cleanup(fn: Callable[[], None]) -> None:
    with _lock:
        if fn in _cleanups:
            _cleanups.remove(fn)


def stop_all(timeout: float = 5.0) -> None:
    """Stop every registered process, newest first (clients before the servers they use), run
    the registered clean-ups (newest first), then remove the tracked throwaway directories."""
    with _lock:
        live = list(_live.values())
    for _name, proc in reversed(live):
        stop(proc, timeout)
    with _lock:
        cleanups = list(reversed(_cleanups))
    for fn in cleanups:
        try:
            fn()
        except Exception:  # one failed clean-up must not keep the others from running
            pass
    _remove_all_dirs()


def _on_signal(signum: int, frame: object) -> None:
    stop_all()
    previous = _previous_handlers.get(signum, signal.SIG_DFL)
    if callable(previous):
        previous(signum, frame)
        return
    # Die of the same signal, as the default action would have.
    signal.signal(signum, signal.SIG_DFL)
    os.kill(os.getpid(), signum)


def _install_handlers() -> None:
    global _handlers_installed, _signals_installed
    if not _handlers_installed:
        _handlers_installed = True
        sweep_orphans()
        atexit.register(_at_exit)
    # Signal handlers can only be set from the main thread; a first spawn from a worker thread
    # leaves that to the next call from the main thread.
    if _signals_installed or threading.current_thread() is not threading.main_thread():
        return
    _signals_installed = True
    for sig in (signal.SIGTERM, signal.SIGHUP):
        previous = signal.getsignal(sig)
        if previous is signal.SIG_IGN:
            continue
        _previous_handlers[sig] = previous
        signal.signal(sig, _on_signal)


# ----------------------------------------------------------------------------------------------
# Throwaway directories: removed by their owner's stop(), or at exit with the processes.

_dirs: dict[str, bool] = {}


def track_dir(path: str | os.PathLike[str], keep: bool = False) -> None:
    """Register a throwaway directory for removal at exit (unless ``keep``, for debugging)."""
    _install_handlers()
    with _lock:
        _dirs[str(path)] = keep
    _log_line("dir", path)
    if not keep:
        _registry_line("dir", path)


def remove_dir(path: str | os.PathLike[str]) -> None:
    """Remove a tracked directory now (a kept one stays, and is forgotten)."""
    with _lock:
        keep = _dirs.pop(str(path), False)
    if not keep:
        shutil.rmtree(path, ignore_errors=True)


def _remove_all_dirs() -> None:
    with _lock:
        paths = list(_dirs)
    for path in paths:
        remove_dir(path)


# ----------------------------------------------------------------------------------------------
# Registry of this runner's children, for the next runner to sweep if this one is SIGKILLed.


def registry_dir() -> Path:
    explicit = os.environ.get(REGISTRY_ENV)
    if explicit:
        return Path(explicit)
    cache = os.environ.get("MUSIG2_CACHE") or str(Path(__file__).resolve().parents[2] / ".cache")
    return Path(cache) / "harness-live"


def _registry_line(*fields: object) -> None:
    global _registry_file
    with _lock:
        if _registry_file is None:
            me = os.getpid()
            folder = registry_dir()
            folder.mkdir(parents=True, exist_ok=True)
            _registry_file = folder / f"{me}-{proc_starttime(me)}.live"
        with open(_registry_file, "a", encoding="utf-8") as fh:
            fh.write("\t".join(str(f) for f in fields) + "\n")


def _at_exit() -> None:
    stop_all()
    if _registry_file is not None:
        _registry_file.unlink(missing_ok=True)


def sweep_orphans(folder: str | os.PathLike[str] | None = None) -> list[tuple[int, str]]:
    """Kill what runners that died without cleaning up left behind; returns ``(pid, name)`` killed.

    A registry file belongs to a runner ``<pid>-<starttime>``; while that runner lives its file is
    left alone (other test runs may share the folder).  Each listed process still alive with the
    same start time is killed with its process group; each listed directory is removed.
    """
    root = Path(folder) if folder is not None else registry_dir()
    killed: list[tuple[int, str]] = []
    if not root.is_dir():
        return killed
    for entry in root.glob("*.live"):
        owner, _, owner_start = entry.stem.partition("-")
        if not owner.isdigit():
            continue
        if is_alive(int(owner), None if owner_start == "None" else int(owner_start)):
            continue
        try:
            lines = entry.read_text(encoding="utf-8").splitlines()
        except FileNotFoundError:
            continue  # another runner swept it first
        for line in lines:
            kind, *rest = line.split("\t")
            if kind == "proc" and len(rest) == 3 and rest[0].isdigit():
                pid, start = int(rest[0]), None if rest[1] == "None" else int(rest[1])
                if start is not None and is_alive(pid, start):
                    _signal_group(pid, signal.SIGKILL)
                    killed.append((pid, rest[2]))
            elif kind == "dir" and rest:
                shutil.rmtree(rest[0], ignore_errors=True)
        entry.unlink(missing_ok=True)
    return killed
