"""The reconnect pacing that keeps EVerest's communication check satisfied (pure, no clock);
the API modules' heartbeat supervision is the station core's (agent.core.watch)."""

from __future__ import annotations

import os
from typing import Protocol

from agent.process.mqtt import BACKOFF_START_S

# A connection lost sooner than this after it was made did not end the outage.
FLAP_S = 1.0


class Jitter(Protocol):
    """What the pacer needs of a random source (random.Random fits, for seeded tests)."""

    def uniform(self, a: float, b: float) -> float:
        """A number between a and b."""
        ...


class _UrandomJitter:
    """Jitter from os.urandom: the `random` module costs RAM the agent needs for nothing else."""

    def uniform(self, a: float, b: float) -> float:
        """A number between a and b."""
        return a + (b - a) * int.from_bytes(os.urandom(4), "little") / 0xFFFFFFFF


class ReconnectPacer:
    """Delays and attempt timeouts between broker connection attempts.

    While EVerest still waits (the first `window_s` of an outage, its check timeout) attempts
    are frequent and short, so a broker back within 2 s is reconnected well inside EVerest's
    5 s; every outage after a connection that worked gets that window. After it the delays grow
    to `cap_s`. A connection lost within FLAP_S (a duplicate client id throwing the other out)
    continues the outage it ended, so it backs off to `cap_s`; only a connection that stayed up
    `stable_s` resets the delay.
    """

    def __init__(self, cap_s: float, attempt_s: float, window_s: float,
                 rng: Jitter | None = None) -> None:
        self.cap_s = cap_s
        self.attempt_s = attempt_s
        self.window_s = window_s
        self.fast_cap_s = min(cap_s, max(BACKOFF_START_S, window_s / 10))
        self.fast_attempt_s = min(attempt_s, window_s / 4)
        self.stable_s = 2 * window_s
        self._rng: Jitter = rng or _UrandomJitter()
        self._step = BACKOFF_START_S
        self._outage_since: float | None = None
        self._up_since: float | None = None

    def up(self, now: float) -> None:
        """A connection was established."""
        self._up_since = now

    def down(self, now: float) -> None:
        """An attempt failed or a connection ended."""
        lasted = None if self._up_since is None else now - self._up_since
        if lasted is not None and lasted >= self.stable_s:
            self._step = BACKOFF_START_S
        if lasted is not None and lasted >= FLAP_S:
            self._outage_since = None  # a connection that worked: a new outage starts now
        self._up_since = None
        if self._outage_since is None:
            self._outage_since = now

    def _fast(self, now: float) -> bool:
        return self._outage_since is None or now - self._outage_since < self.window_s

    def delay(self, now: float) -> float:
        """Seconds to wait before the next attempt (with 50-100 % jitter)."""
        cap = self.fast_cap_s if self._fast(now) else self.cap_s
        delay = min(self._step, cap) * self._rng.uniform(0.5, 1.0)
        self._step = min(self._step * 2, self.cap_s)
        return delay

    def timeout(self, now: float) -> float:
        """How long the next attempt may take before it is abandoned."""
        return self.fast_attempt_s if self._fast(now) else self.attempt_s
