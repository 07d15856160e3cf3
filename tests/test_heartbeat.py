"""Heartbeat ids: gaps, duplicates, the uint64 wrap and EVerest restarts."""

from __future__ import annotations

import pytest

from agent.model.heartbeat import WRAP, WRAP32, HeartbeatTracker


@pytest.mark.parametrize(("ids", "missed", "restarts", "last"), [
    ([0, 1, 2, 3], 0, 0, "next"),
    ([0, 1, 5], 3, 0, "gap"),
    ([7, 7], 0, 0, "duplicate"),
    ([WRAP - 2, WRAP - 1, 0, 1], 0, 0, "next"),     # wrap is not a restart
    ([WRAP - 2, 1], 2, 0, "gap"),                    # gap across the wrap
    ([100, 101, 0], 0, 1, "restart"),                # EVerest restarted
    ([100, 0, 1, 2, 0], 0, 2, "restart"),
    # size_t on a 32-bit board (armv7): 2**32-1 -> 0 is a wrap too, not a restart.
    ([WRAP32 - 2, WRAP32 - 1, 0, 1], 0, 0, "next"),
    ([WRAP32 - 1, 3], 3, 0, "gap"),                  # gap across the 32-bit wrap
    ([WRAP32 - 2**20, 0], 0, 1, "restart"),          # far below the top: a restart
    ([2**33, 0], 0, 1, "restart"),                   # a 64-bit counter going back
])
def test_sequences(ids: list[int], missed: int, restarts: int, last: str) -> None:
    tracker = HeartbeatTracker()
    verdicts = [tracker.observe(i) for i in ids]
    assert verdicts[0] == "first"
    assert verdicts[-1] == last
    assert (tracker.missed, tracker.restarts, tracker.last_id) == (missed, restarts, ids[-1])


def test_wraps_are_counted_and_restarts_are_not_wraps() -> None:
    tracker = HeartbeatTracker()
    for beat in (WRAP - 1, 0, WRAP32 - 1, 0, 50, 0):
        tracker.observe(beat)
    # WRAP-1 -> 0 wraps; 0 -> WRAP32-1 is a gap; WRAP32-1 -> 0 wraps; 50 -> 0 restarts.
    assert (tracker.wraps, tracker.restarts) == (2, 1)
