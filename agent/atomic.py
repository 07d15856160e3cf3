"""Durable small files: the one way the agent replaces a file (state, status, cache, outputs).

A reader sees the old or the new content, never a torn file; with `durable` the new content
survives a power cut once the call returns. A leaf module: every layer that writes may use it.
"""

from __future__ import annotations

import contextlib
import itertools
import os

# Paths as str and os.path, not pathlib: on the run path pathlib would import urllib.parse and
# ipaddress, ~0.6 MB of RSS for nothing the agent needs.
StrPath = str | os.PathLike[str]


def write_atomic(path: StrPath, data: bytes, *, durable: bool = True, mode: int = 0o644,
                 parents: bool = False) -> None:
    """Replace `path` with `data` so readers see the old or the new file, never a torn one
    (with `parents`, its missing folders are made first)."""
    target = os.fspath(path)
    if parents:
        os.makedirs(os.path.dirname(target) or ".", exist_ok=True)
    fd, tmp = _create_temp(target)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            if durable:
                handle.flush()
                os.fsync(handle.fileno())
        os.chmod(tmp, mode)
        os.replace(tmp, target)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    if durable:
        # The rename itself is only durable once the directory entry is on disk.
        dir_fd = os.open(os.path.dirname(target) or ".", os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)


# Temp names are ".<target>.<pid>-<n>.tmp": unique within the process by the counter and
# across processes by the pid; O_EXCL refuses a leftover of a pid before a reboot. Not tempfile:
# it imports shutil, random, bz2 and lzma, ~0.8 MB of RSS on a board that counts megabytes.
_TEMP_COUNTER = itertools.count()
_TEMP_ATTEMPTS = 100


def _create_temp(target: str) -> tuple[int, str]:
    """A new file next to `target`, opened for writing with mode 0600: (fd, its path)."""
    folder, name = os.path.split(target)
    for _ in range(_TEMP_ATTEMPTS):
        tmp = os.path.join(folder, f".{name}.{os.getpid()}-{next(_TEMP_COUNTER)}.tmp")
        try:
            return os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o600), tmp
        except FileExistsError:
            continue
    raise FileExistsError(f"no free temporary name next to {target}")


def remove_stale_temps(state_dir: str) -> int:
    """Delete temp files a power cut left behind in `state_dir`; returns how many."""
    removed = 0
    try:
        names = os.listdir(state_dir)
    except OSError:
        return 0
    for name in names:
        # Only write_atomic's own names: ".<target>.<random>.tmp".
        if name.startswith(".") and name.endswith(".tmp") and name.count(".") >= 3:
            with contextlib.suppress(OSError):
                os.unlink(os.path.join(state_dir, name))
                removed += 1
    return removed


def remove_temps_of(path: StrPath) -> int:
    """Delete the temp files that a killed writer of `path` left beside it; returns how many.

    For a file in a folder shared with others (an output's `/run/...`): only `path`'s own temp
    names, and only of processes that are gone (a live writer's temp is about to be renamed).
    """
    folder, name = os.path.split(os.fspath(path))
    prefix = f".{name}."
    removed = 0
    try:
        candidates = [n for n in os.listdir(folder or ".")
                      if n.startswith(prefix) and n.endswith(".tmp")]
    except OSError:
        return 0
    for tmp in candidates:
        pid, dash, count = tmp[len(prefix):-len(".tmp")].partition("-")
        if not (dash and pid.isdigit() and count.isdigit()) or _running(int(pid)):
            continue
        with contextlib.suppress(OSError):
            os.unlink(os.path.join(folder, tmp))
            removed += 1
    return removed


def _running(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:  # EPERM: it exists, as another user
        return True
    return True
