"""Lanes (agent/lanes.py): each owner's blocking calls in a thread of its own."""

from __future__ import annotations

import asyncio
import os
import threading

import pytest

from agent.lanes import Lane


def test_a_call_stuck_in_one_lane_delays_no_other_lane() -> None:
    never = threading.Event()

    async def main() -> str:
        stuck, other = Lane("stuck"), Lane("other")
        waiting = asyncio.ensure_future(stuck.call(never.wait))
        answer = await other.call(lambda: "answered")
        assert not waiting.done()
        waiting.cancel()  # the awaiting task is free at once; the thread goes on alone
        with pytest.raises(asyncio.CancelledError):
            await waiting
        return answer
    try:
        assert asyncio.run(main()) == "answered"
    finally:
        never.set()


def test_calls_of_one_lane_run_in_order_and_return_or_raise_what_they_did() -> None:
    order: list[int] = []

    def fail() -> None:
        raise OSError(5, "Input/output error")

    async def main() -> None:
        lane = Lane("ordered")
        results = await asyncio.gather(*(lane.call(order.append, i) for i in range(20)))
        assert results == [None] * 20
        with pytest.raises(OSError, match="Input/output error"):
            await lane.call(fail)
        assert await lane.call(os.getpid) == os.getpid()
    asyncio.run(main())
    assert order == list(range(20))


def test_a_lane_thread_ends_when_idle_and_comes_back_for_the_next_call() -> None:
    async def main() -> None:
        lane = Lane("idle", idle_s=0.05)
        name = await lane.call(lambda: threading.current_thread().name)
        assert name == "lane-idle"
        for _ in range(200):
            if not lane.alive:
                break
            await asyncio.sleep(0.01)
        assert not lane.alive
        assert not any(t.name == "lane-idle" for t in threading.enumerate())
        assert await lane.call(lambda: 42) == 42
    asyncio.run(main())


def test_a_call_that_ends_after_its_loop_closed_is_dropped_quietly() -> None:
    release, finished = threading.Event(), threading.Event()

    def slow() -> None:
        release.wait()
        finished.set()

    async def main() -> None:
        task = asyncio.ensure_future(Lane("late").call(slow))
        await asyncio.sleep(0.05)
        task.cancel()
    asyncio.run(main())  # the loop is closed now
    release.set()
    assert finished.wait(5)
