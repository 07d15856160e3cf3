"""The crew that owns the agent's tasks: a stop always ends, a task holding it up is named and
cancelled again, and nothing asked of the crew while it stops turns into a failure."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Coroutine
from typing import Any

import pytest

from agent.process.crew import Crew, Stopped
from agent.process.sdnotify import Notifier

Body = Callable[[], Coroutine[Any, Any, None]]
LIMIT_S = 0.2


def deaf(swallowed: int) -> Body:
    """A task that swallows its first `swallowed` cancels (a buggy output plugin)."""
    async def body() -> None:
        for _ in range(swallowed):
            with contextlib.suppress(asyncio.CancelledError):
                await asyncio.Event().wait()
        await asyncio.Event().wait()
    return body


async def idle() -> None:
    await asyncio.Event().wait()


async def crew_stopped(bodies: dict[str, Body] | Callable[[Crew], dict[str, Body]], *,
                       stop_first: bool = False) -> tuple[Crew, int, bool]:
    """Run `bodies` (or those made for the crew) in a crew and stop it as the agent does; the
    crew, then as the agent's shutdown finds them: its task's pending cancels and whether its
    own timeouts time out."""
    crew = Crew(asyncio.get_running_loop(), Notifier(), stop_limit_s=LIMIT_S)
    if callable(bodies):
        bodies = bodies(crew)
    stop = asyncio.Event()

    async def until_stopped() -> None:
        await stop.wait()
        raise Stopped

    def request_stop() -> None:
        crew.winding_down()
        stop.set()

    def start() -> None:
        for name, body in bodies.items():
            crew.spawn(name, body)
        crew.spawn("stop", until_stopped)

    if stop_first:  # SIGTERM during start-up: the limit passes before any task runs
        request_stop()
        await asyncio.sleep(LIMIT_S * 2)
    else:
        asyncio.get_running_loop().call_later(0.05, request_stop)
    async def agent() -> tuple[int, bool]:
        await crew.run(start)
        task = asyncio.current_task()
        assert task is not None
        pending = task.cancelling()
        try:
            async with asyncio.timeout(0.01):
                await asyncio.sleep(1)
        except TimeoutError:
            return pending, True
        return pending, False

    running = asyncio.create_task(agent())
    await asyncio.wait({running}, timeout=10.0)
    if not running.done():  # what this module is about: report it, do not hang the suite
        pytest.fail("the stop never ended")
    return crew, *running.result()


def overdue_lines(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if "stop overdue" in r.getMessage()]


def test_a_clean_stop_is_not_a_failure(caplog: pytest.LogCaptureFixture) -> None:
    crew, _, _ = asyncio.run(crew_stopped({"a": idle, "b": idle}))
    assert not crew.failed
    assert overdue_lines(caplog) == []


@pytest.mark.parametrize("swallowed", [1, 3])
def test_a_task_swallowing_its_cancels_is_named_once_and_cancelled_until_it_ends(
        swallowed: int, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.ERROR)
    crew, _, _ = asyncio.run(crew_stopped({"output:deaf": deaf(swallowed), "b": idle}))
    assert crew.failed  # exit status 1
    [line] = overdue_lines(caplog)
    assert line.startswith("stop overdue: task output:deaf still running")
    assert "test_crew.py:" in line and "in body" in line  # where it waits


def test_a_stop_during_start_up_still_catches_a_task_that_holds_it(
        caplog: pytest.LogCaptureFixture) -> None:
    crew, _, _ = asyncio.run(crew_stopped({"output:deaf": deaf(1)}, stop_first=True))
    assert crew.failed
    assert len(overdue_lines(caplog)) == 1


def test_nothing_spawned_while_stopping_and_no_failure_for_asking(
        caplog: pytest.LogCaptureFixture) -> None:
    # The broker link routes the messages it already has before its cancel lands; a tariff
    # among them asks for a pricing fetch while the group is shutting down.
    asked: list[asyncio.Task[None] | None] = []

    def link(crew: Crew) -> dict[str, Body]:
        async def body() -> None:
            try:
                await asyncio.Event().wait()
            finally:
                asked.append(crew.spawn_while_running("pricing", idle))
        return {"mqtt": body}
    crew, _, _ = asyncio.run(crew_stopped(link))
    assert asked == [None]
    assert not crew.failed
    assert "failed" not in caplog.text


def test_after_the_crew_the_shutdowns_own_timeouts_still_time_out() -> None:
    # Python 3.11's group leaves a cancel counted on its parent; 3.11.2's asyncio.timeout
    # then raises CancelledError where TimeoutError is due.
    _, pending, timed_out = asyncio.run(crew_stopped({"a": idle}))
    assert (pending, timed_out) == (0, True)
