"""A pseudo-terminal standing in for a serial display in the demo; shows what it receives."""

from __future__ import annotations

import os
import sys
import threading
from typing import TextIO


class PtyTap:
    """Opens a pty; the agent writes to its slave path, a thread prints what arrives."""

    def __init__(self, sink: TextIO | None = None) -> None:
        self.master, self.slave = os.openpty()
        self.path = os.ttyname(self.slave)
        self.sink = sink or sys.stderr
        self._thread = threading.Thread(target=self._drain, name="pty-tap", daemon=True)

    def __enter__(self) -> PtyTap:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        os.close(self.slave)
        os.close(self.master)

    def _drain(self) -> None:
        while True:
            try:
                data = os.read(self.master, 4096)
            except OSError:
                return
            if not data:
                return
            for line in data.decode("latin-1").splitlines():
                self.sink.write(f"serial> {line.encode('unicode_escape').decode('ascii')}\n")
            self.sink.flush()
