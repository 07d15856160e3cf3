"""Test-only entry point: the real `cost-agent` command with a bug injected into a core loop.

Usage: `python tests/fault_entry.py run --config PATH` (any cost-agent arguments). After
`COST_AGENT_FAULT_AFTER_S` seconds (default 2) the display clock loop raises RuntimeError, as a
bug in the agent's own code would; the process must log it and exit with status 1. Nothing in
the agent is edited: the fault is patched in here, so the shipped code has no test hook.
"""

from __future__ import annotations

import os
import sys
import time

from agent import cli
from agent.model.display import DisplayModel
from agent.model.state import State

_AFTER_S = float(os.environ.get("COST_AGENT_FAULT_AFTER_S", "2"))
_FAULT_AT = time.monotonic() + _AFTER_S
_real_next_deadline = DisplayModel.next_deadline


def _faulty_next_deadline(self: DisplayModel, state: State) -> float | None:
    if time.monotonic() >= _FAULT_AT:
        raise RuntimeError("injected fault in the clock loop")
    real = _real_next_deadline(self, state)
    # Wake the clock loop at the fault time even when nothing else would.
    return _FAULT_AT if real is None else min(real, _FAULT_AT)


DisplayModel.next_deadline = _faulty_next_deadline  # type: ignore[method-assign]

if __name__ == "__main__":
    sys.exit(cli.main())
