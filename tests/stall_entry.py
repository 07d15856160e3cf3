"""Test-only entry point: the real `cost-agent` command with a disk that stops answering.

Usage: `python tests/stall_entry.py run --config PATH` (any cost-agent arguments). From
`COST_AGENT_STALL_AFTER_S` seconds after start (default 2) every snapshot write blocks for
good, as a write to a dead SD card or a hung network filesystem does; nothing else is touched.
No real filesystem here can be told to hang, so the stall is patched in here: the shipped code
has no test hook.
"""

from __future__ import annotations

import os
import sys
import threading
import time

from agent import cli
from agent.process import persist

_STALL_AT = time.monotonic() + float(os.environ.get("COST_AGENT_STALL_AFTER_S", "2"))
_real_write = persist._write_private
_never = threading.Event()


def _stalling_write(path: str, data: bytes) -> None:
    if time.monotonic() >= _STALL_AT:
        _never.wait()
    _real_write(path, data)


persist._write_private = _stalling_write

if __name__ == "__main__":
    sys.exit(cli.main())
