"""EVerest heartbeat bookkeeping: gaps, restarts and counter wraps (pure, no clock)."""

from __future__ import annotations

from typing import Literal

WRAP = 2**64
_HALF = 2**63
# EVerest counts in a C++ size_t: 32 bits on armv7 boards, so the counter also wraps there.
WRAP32 = 2**32
# A step back from near 2**32-1 to near 0 that is at most this many ids forward (modulo 2**32)
# is the 32-bit wrap (with a gap), not a restart; a restart from that close to the top of the
# 32-bit range cannot be told apart and is taken for a wrap.
WRAP32_WINDOW = 2**16

Verdict = Literal["first", "next", "gap", "duplicate", "restart"]


class HeartbeatTracker:
    """Counts missed heartbeat ids and EVerest restarts from the sequence of ids."""

    def __init__(self) -> None:
        self.last_id: int | None = None
        self.received = 0
        self.missed = 0
        self.restarts = 0
        self.wraps = 0

    def observe(self, beat: int) -> Verdict:
        """Record heartbeat `beat`; says how it relates to the previous one."""
        self.received += 1
        last, self.last_id = self.last_id, beat
        if last is None:
            return "first"
        forward = (beat - last) % WRAP
        if beat < last < WRAP32 and (beat - last) % WRAP32 <= WRAP32_WINDOW:
            forward = (beat - last) % WRAP32
        if forward == 0:
            return "duplicate"
        # Forward by less than half the id space is a step or a gap (also across a wrap);
        # anything else went backwards: EVerest restarted and counts from 0 again.
        if forward >= _HALF:
            self.restarts += 1
            return "restart"
        if beat < last:
            self.wraps += 1
        if forward == 1:
            return "next"
        self.missed += forward - 1
        return "gap"
