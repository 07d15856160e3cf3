"""A pseudo-terminal standing in for a serial display (tests and the demo)."""

from __future__ import annotations

import asyncio
import contextlib
import os
from collections.abc import Callable

import msgspec

from agent.outputs.serial import SerialConfig


class PtyTap:
    """A pseudo-terminal standing in for a display: outputs write to `path`, we read `master`.

    Keeps the slave side open so the master never sees EOF/EIO while an output re-opens.
    Usage (demo): `tap = PtyTap(); config = tap.config(width=20, lines=4)`, give `config` to
    the serial output, then `tap.watch(callback)` calls `callback(bytes)` for what arrives.
    """

    def __init__(self) -> None:
        self.master, self._slave = os.openpty()
        os.set_blocking(self.master, False)
        self.path = os.ttyname(self._slave)
        self._watching = False

    def config(self, **keys: object) -> SerialConfig:
        """A validated serial config (line protocol unless told) writing to this pty."""
        table: dict[str, object] = {"type": "serial", "device": self.path, **keys}
        return msgspec.convert(table, SerialConfig)

    def read(self) -> bytes:
        """Whatever has arrived so far (b"" when nothing has)."""
        chunks = []
        while True:
            try:
                chunk = os.read(self.master, 65536)
            except (BlockingIOError, OSError):
                break
            if not chunk:
                break
            chunks.append(chunk)
        return b"".join(chunks)

    def watch(self, callback: Callable[[bytes], None]) -> None:
        """Call `callback` from the running loop with each chunk the display receives."""
        def ready() -> None:
            data = self.read()
            if data:
                callback(data)
        asyncio.get_running_loop().add_reader(self.master, ready)
        self._watching = True

    def close(self) -> None:
        """Stop watching and close both sides."""
        if self._watching:
            with contextlib.suppress(RuntimeError):
                asyncio.get_running_loop().remove_reader(self.master)
            self._watching = False
        for fd in (self.master, self._slave):
            with contextlib.suppress(OSError):
                os.close(fd)
