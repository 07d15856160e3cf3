"""Heartbeat ids: gaps, duplicates, the uint64 wrap and EVerest restarts."""

from __future__ import annotations

import pytest

from agent.heartbeat import WRAP, HeartbeatTracker


@pytest.mark.parametrize(("ids", "missed", "restarts", "last"), [
    ([0, 1, 2, 3], 0, 0, "next"),
    ([0, 1, 5], 3, 0, "gap"),
    ([7, 7], 0, 0, "duplicate"),
    ([WRAP - 2, WRAP - 1, 0, 1], 0, 0, "next"),     # wrap is not a restart
    ([WRAP - 2, 1], 2, 0, "gap"),                    # gap across the wrap
    ([100, 101, 0], 0, 1, "restart"),                # EVerest restarted
    ([100, 0, 1, 2, 0], 0, 2, "restart"),
])
def test_sequences(ids: list[int], missed: int, restarts: int, last: str) -> None:
    tracker = HeartbeatTracker()
    verdicts = [tracker.observe(i) for i in ids]
    assert verdicts[0] == "first"
    assert verdicts[-1] == last
    assert (tracker.missed, tracker.restarts, tracker.last_id) == (missed, restarts, ids[-1])
