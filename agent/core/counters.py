"""Per API module: the payloads received, rejected and cleared, for the status file (no secrets
ever enter here). Times are passed in: the monotonic `now` and, for the texts, the wall clock."""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from functools import lru_cache
from typing import TYPE_CHECKING, Any

import msgspec

from agent.everest.session_cost import TOPICS
from agent.model.text import truncate

if TYPE_CHECKING:
    from agent.core.watch import ApiWatch

log = logging.getLogger(__name__)

# A flood of bad payloads is logged once per topic per this many seconds, with a count.
REJECTION_LOG_INTERVAL_S = 10.0
# Topics whose payloads can carry a driver's token (id_tag, an IdToken identifier_id):
# a rejection log line says their size, never their bytes (the journal lives on flash).
NOT_QUOTED = frozenset({"session_cost", "tariff_message", "session_event", "set_display_message"})


def wall_clock_text(epoch: float) -> str:
    """RFC 3339 UTC time with milliseconds, for humans and the view's `updated_at`."""
    return _second_text(int(epoch // 1)) + f".{int(epoch % 1 * 1000):03d}Z"


@lru_cache(maxsize=4)
def _second_text(second: int) -> str:
    # Every view is stamped: within a second the date and time are formatted once.
    return datetime.fromtimestamp(second, UTC).strftime("%Y-%m-%dT%H:%M:%S")


class Rejection(msgspec.Struct, frozen=True):
    """The newest refused payload's topic and reason."""

    topic: str
    reason: str
    time: str


class Counters:
    """Message, link and output counters; snapshot() gives the status-file document."""

    def __init__(self, started_monotonic: float, topics: tuple[str, ...] = TOPICS,
                 label: str = "") -> None:
        self.started = started_monotonic
        # Log lines name the module for the per-EVSE APIs: "evse_manager_1/session_event".
        self.label = label
        self.received: dict[str, int] = dict.fromkeys(topics, 0)
        self.rejected: dict[str, int] = dict.fromkeys(topics, 0)
        # Zero-byte payloads: a retained message was cleared (counted, never rejected).
        self.cleared: dict[str, int] = dict.fromkeys(topics, 0)
        self.last_rejection: Rejection | None = None
        # Monotonic time of the newest non-empty payload (`last_message_age_s` in the file).
        self.last_received: float | None = None
        self._log_after: dict[str, float] = {}
        self._suppressed: dict[str, int] = {}

    def admit(self, topic: str, payload: bytes, now: float, limit: int, wall: float) -> bool:
        """Count a payload; False for a cleared (zero-byte) or oversized one (rejected)."""
        if not payload:
            # A retained message was cleared (zero bytes): nothing to show, nothing wrong.
            self.cleared[topic] += 1
            return False
        self.received[topic] += 1
        self.last_received = now
        if len(payload) > limit:
            self.reject(topic, f"payload of {len(payload)} bytes exceeds {limit}", payload[:200],
                        now, wall)
            return False
        return True

    def reject(self, topic: str, reason: str, payload: bytes, now: float, wall: float) -> None:
        """Count a refused payload and log it, at most once per topic per interval."""
        self.rejected[topic] = self.rejected.get(topic, 0) + 1
        self.last_rejection = Rejection(topic=topic, reason=reason[:200],
                                        time=wall_clock_text(wall))
        if now < self._log_after.get(topic, 0.0):
            self._suppressed[topic] = self._suppressed.get(topic, 0) + 1
            return
        more = self._suppressed.pop(topic, 0)
        suffix = f" ({more} more since the last report)" if more else ""
        shown = (f"{len(payload)} bytes, not quoted" if topic in NOT_QUOTED
                 else truncate(payload))
        log.warning("rejected %s%s: %s; payload %s%s", self.label, topic, reason[:200], shown,
                    suffix)
        self._log_after[topic] = now + REJECTION_LOG_INTERVAL_S

    def snapshot(self, now: float, wall: float, watch: ApiWatch, **extra: Any) -> dict[str, Any]:
        """The status document (JSON-ready), with the module's heartbeats and checks sent."""
        hb = watch.tracker
        doc: dict[str, Any] = {
            "received": dict(self.received),
            "rejected": dict(self.rejected),
            "cleared": dict(self.cleared),
            "last_rejection": self.last_rejection,
            "communication_checks_sent": watch.checks_sent,
            "last_message_age_s": (None if self.last_received is None
                                   else round(now - self.last_received, 3)),
            "heartbeat": {"received": hb.received, "last_id": hb.last_id, "missed": hb.missed,
                          "restarts": hb.restarts, "wraps": hb.wraps},
            "uptime_s": round(now - self.started, 3),
            "written_at": wall_clock_text(wall),
        }
        doc.update(extra)
        return doc
