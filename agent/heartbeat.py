"""EVerest heartbeat bookkeeping: gaps, restarts and the uint64 wrap (pure, no clock)."""

from __future__ import annotations

from typing import Literal

WRAP = 2**64
_HALF = 2**63

Verdict = Literal["first", "next", "gap", "duplicate", "restart"]


class HeartbeatTracker:
    """Counts missed heartbeat ids and EVerest restarts from the sequence of ids."""

    def __init__(self) -> None:
        self.last_id: int | None = None
        self.received = 0
        self.missed = 0
        self.restarts = 0

    def observe(self, beat: int) -> Verdict:
        """Record heartbeat `beat`; says how it relates to the previous one."""
        self.received += 1
        last, self.last_id = self.last_id, beat
        if last is None:
            return "first"
        forward = (beat - last) % WRAP
        if forward == 0:
            return "duplicate"
        if forward == 1:
            return "next"
        # Forward by less than half the id space is a gap (also across 2**64-1 -> 0); anything
        # else went backwards: EVerest restarted and counts from 0 again.
        if forward < _HALF:
            self.missed += forward - 1
            return "gap"
        self.restarts += 1
        return "restart"
