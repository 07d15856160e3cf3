"""The agent's tasks under one owner: a TaskGroup in which an unexpected exception of any task
is logged once and stops the rest, and a stop that overruns its limit is not left to hang.

A task that swallows its cancel (Python 3.11's `asyncio.wait_for` did, as an awaited step
completed; an output plugin may) would keep the group, and so the process, from ever ending:
systemd would kill it at TimeoutStopSec with nothing said. Instead, STOP_LIMIT_S after the stop
began every task still running is named with where it waits, cancelled again, and the agent
exits 1, as after any bug in its own loops.
"""

from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import Awaitable, Callable

from agent.process.sdnotify import Notifier

log = logging.getLogger(__name__)

# The outputs' flush (0.3 s) and closes (<= 0.5 s) end far sooner; systemd kills at 10 s.
STOP_LIMIT_S = 5.0


class Stopped(Exception):
    """Raised by a task to end the crew after a clean stop."""


class Crew:
    """Owns every task of the running agent (asyncio.TaskGroup); `failed` after any fault."""

    def __init__(self, loop: asyncio.AbstractEventLoop, notifier: Notifier) -> None:
        self.loop = loop
        self.notifier = notifier
        self.failed = False
        self._tg: asyncio.TaskGroup | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self._overdue: asyncio.TimerHandle | None = None

    async def run(self, start: Callable[[], None]) -> None:
        """Run the tasks `start` spawns until one raises Stopped or fails (then `failed`)."""
        try:
            async with asyncio.TaskGroup() as tg:
                self._tg = tg
                start()
        except* Stopped:
            pass
        except* Exception:
            self.failed = True  # each failure was logged with its traceback where it happened
        finally:
            self._tg = None
            if self._overdue is not None:
                self._overdue.cancel()

    def spawn(self, name: str, body: Callable[[], Awaitable[None]]) -> asyncio.Task[None]:
        """Start `body` as the task `name`; only while run() is running."""
        assert self._tg is not None
        task = self._tg.create_task(self._owned(name, body), name=name)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    def spawn_while_running(self, name: str, body: Callable[[], Awaitable[None]]
                            ) -> asyncio.Task[None] | None:
        """spawn(), or None once the crew has ended."""
        return self.spawn(name, body) if self._tg is not None else None

    def winding_down(self) -> None:
        """The tasks are being stopped: any still running STOP_LIMIT_S from now is overdue."""
        if self._overdue is None:
            self._overdue = self.loop.call_later(STOP_LIMIT_S, self._stop_overdue)

    async def _owned(self, name: str, body: Callable[[], Awaitable[None]]) -> None:
        try:
            await body()
        except (Stopped, asyncio.CancelledError):
            raise
        except Exception:
            if not self.failed:
                # The rest is cancelled now: systemd hears that the service is going down.
                self.notifier.send(STOPPING="1", STATUS=f"failed: task {name}")
            self.failed = True
            log.exception("task %s failed; stopping the agent", name)
            self.winding_down()
            raise

    def _stop_overdue(self) -> None:
        late = [task for task in self._tasks if not task.done()]
        if not late:
            return
        if not self.failed:
            self.notifier.send(STATUS=f"failed: stop overdue in task {late[0].get_name()}")
        self.failed = True
        for task in sorted(late, key=asyncio.Task.get_name):
            log.error("stop overdue: task %s still running %.0f s after the stop began (waiting "
                      "at %s); cancelling it again", task.get_name(), STOP_LIMIT_S, _where(task))
            task.cancel()


def _where(task: asyncio.Task[None]) -> str:
    """`file:line in function` of the innermost frame outside asyncio that the task waits in."""
    found = "?"
    coro: object = task.get_coro()
    while coro is not None:
        frame = getattr(coro, "cr_frame", None) or getattr(coro, "gi_frame", None)
        if frame is not None and not frame.f_code.co_filename.startswith(_ASYNCIO):
            code = frame.f_code
            found = f"{os.path.basename(code.co_filename)}:{frame.f_lineno} in {code.co_name}"
        coro = getattr(coro, "cr_await", None) or getattr(coro, "gi_yieldfrom", None)
    return found


_ASYNCIO = os.path.dirname(asyncio.__file__) + os.sep
