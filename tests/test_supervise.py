"""Reconnect pacing and per-module heartbeat supervision (pure, simulated time)."""

from __future__ import annotations

import itertools
import random

from agent.core.watch import ApiWatch
from agent.process.supervise import ReconnectPacer


def _attempts(pacer: ReconnectPacer, down_at: float, until: float) -> list[float]:
    """Attempt times of a broker outage from `down_at` to `until` (all attempts fail)."""
    now, times = down_at, []
    pacer.down(now)
    while now < until:
        now += pacer.delay(now)
        times.append(now)
        pacer.down(now)
    return times


def test_short_outage_is_retried_fast_enough_for_everest() -> None:
    for seed in range(50):
        pacer = ReconnectPacer(cap_s=2.0, attempt_s=5.0, window_s=5.0, rng=random.Random(seed))
        pacer.up(0.0)
        times = _attempts(pacer, down_at=100.0, until=102.0)
        # The broker is back at 102.0: the next attempt comes within the fast cap.
        assert times[-1] - 102.0 <= pacer.fast_cap_s
        assert pacer.timeout(times[-1]) <= 5.0 / 4


def test_long_outage_backs_off_to_the_cap() -> None:
    pacer = ReconnectPacer(cap_s=2.0, attempt_s=5.0, window_s=5.0, rng=random.Random(1))
    times = _attempts(pacer, down_at=0.0, until=60.0)
    late = [b - a for a, b in itertools.pairwise(times) if a > 10.0]
    assert late and all(1.0 <= d <= 2.0 for d in late)
    assert pacer.timeout(60.0) == 5.0


def test_connection_lost_at_once_keeps_backing_off() -> None:
    # Two agents with one client id throw each other out: no reset, no storm.
    pacer = ReconnectPacer(cap_s=2.0, attempt_s=5.0, window_s=5.0, rng=random.Random(2))
    now, connects = 0.0, 0
    while now < 30.0:
        pacer.up(now)
        connects += 1
        pacer.down(now + 0.01)
        now += 0.01 + pacer.delay(now + 0.01)
    assert connects < 40  # about one a second; it was 155 a second with no backoff


def test_broker_restarted_again_soon_is_reconnected_fast_again() -> None:
    # Connections of 5 s (under stable_s) between restarts: each loss is a new outage for
    # EVerest, whose check timeout restarted with the checks of that connection.
    for seed in range(50):
        pacer = ReconnectPacer(cap_s=2.0, attempt_s=5.0, window_s=5.0, rng=random.Random(seed))
        pacer.up(0.0)
        now = 0.0
        for _ in range(5):
            down_at = now + 5.0
            times = _attempts(pacer, down_at=down_at, until=down_at + 2.0)
            assert times[-1] - (down_at + 2.0) <= pacer.fast_cap_s
            assert pacer.timeout(times[-1]) <= 5.0 / 4
            now = times[-1]
            pacer.up(now)


def test_stable_connection_resets_the_pacing() -> None:
    pacer = ReconnectPacer(cap_s=2.0, attempt_s=5.0, window_s=5.0, rng=random.Random(3))
    _attempts(pacer, down_at=0.0, until=60.0)
    pacer.up(60.0)
    pacer.down(200.0)
    assert pacer.delay(200.0) <= 0.1


def test_heartbeat_deadline_per_module() -> None:
    watch = ApiWatch("evse 1", "base/", heartbeat_timeout_s=3.0)
    watch.connected(10.0)
    assert watch.deadline(connected=True) == 13.0
    assert watch.deadline(connected=False) is None
    assert not watch.expire(12.9, connected=True)
    assert watch.expire(13.0, connected=True) and not watch.ok
    assert watch.deadline(connected=True) is None  # gone until a heartbeat brings it back
    verdict, back = watch.beat(0, 14.0)
    assert (verdict, back, watch.ok) == ("first", True, True)
    assert watch.check_topic == "base/m2e/communication_check"


def test_every_outage_after_a_working_connection_is_retried_fast() -> None:
    pacer = ReconnectPacer(cap_s=2.0, attempt_s=5.0, window_s=5.0, rng=random.Random(4))
    first = _attempts(pacer, down_at=0.0, until=1.2)
    pacer.up(first[-1])
    # The broker restarts again 5 s later, well before the pacing would reset (10 s).
    second = _attempts(pacer, down_at=first[-1] + 5.0, until=first[-1] + 7.0)
    assert pacer.timeout(second[-1]) <= 5.0 / 4
    assert second[-1] - (first[-1] + 7.0) <= pacer.fast_cap_s
