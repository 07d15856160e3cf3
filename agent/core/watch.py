"""Supervision of one EVerest API module: its heartbeats in, our communication checks out
(pure: the caller passes the monotonic time)."""

from __future__ import annotations

from agent.model.heartbeat import HeartbeatTracker, Verdict


class ApiWatch:
    """One API module (session cost, or one EVSE manager): heartbeat deadline and check topic."""

    def __init__(self, name: str, base: str, heartbeat_timeout_s: float) -> None:
        self.name = name
        self.base = base
        self.check_topic = base + "m2e/communication_check"
        self.timeout_s = heartbeat_timeout_s
        self.tracker = HeartbeatTracker()
        self.ok = True
        self.since = 0.0
        self.checks_sent = 0

    def connected(self, now: float) -> None:
        """A new broker connection: the heartbeat timeout counts from here."""
        self.since = now
        self.ok = True

    def beat(self, beat: int, now: float) -> tuple[Verdict, bool]:
        """Record a heartbeat; returns its verdict and whether it brought the module back."""
        verdict = self.tracker.observe(beat)
        self.since = now
        back = not self.ok
        self.ok = True
        return verdict, back

    def deadline(self, connected: bool) -> float | None:
        """When the module counts as gone if no heartbeat arrives (None: not supervised now)."""
        if self.timeout_s <= 0 or not connected or not self.ok:
            return None
        return self.since + self.timeout_s

    def expire(self, now: float, connected: bool) -> bool:
        """Mark the module gone when its deadline passed; True when that changed."""
        deadline = self.deadline(connected)
        if deadline is None or now < deadline:
            return False
        self.ok = False
        return True
