"""The broker connection's counters, as the status file shows them."""

from __future__ import annotations

import msgspec


class BrokerStats(msgspec.Struct):
    """The broker connection as the status file shows it."""

    connected: bool = False
    connects: int = 0
    reconnects: int = 0
    # Messages the consumer fell behind on (dropped oldest-first; never expected).
    dropped: int = 0
    last_error: str | None = None
