"""The agent's tasks under one owner: a TaskGroup in which an unexpected exception of any task
is logged once and stops the rest, and a stop that overruns its limit is not left to hang.

A task that swallows its cancel (Python 3.11's `asyncio.wait_for` did, as an awaited step
completed; an output plugin may) would keep the group, and so the process, from ever ending:
systemd would kill it at TimeoutStopSec with nothing said. Instead, `stop_limit_s` after the
stop began every task still running is named with where it waits and cancelled again (then
every second while it holds on), and the agent exits 1, as after any bug in its own loops.
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
RECANCEL_S = 1.0


class Stopped(Exception):
    """Raised by a task to end the crew after a clean stop."""


class Crew:
    """Owns every task of the running agent (asyncio.TaskGroup); `failed` after any fault."""

    def __init__(self, loop: asyncio.AbstractEventLoop, notifier: Notifier,
                 stop_limit_s: float = STOP_LIMIT_S) -> None:
        self.loop = loop
        self.notifier = notifier
        self.stop_limit_s = stop_limit_s
        self.failed = False
        self._tg: asyncio.TaskGroup | None = None
        self._ended = False
        self._tasks: set[asyncio.Task[None]] = set()
        self._named: set[asyncio.Task[None]] = set()
        # Set from the moment the tasks are being stopped: the crew is stopping.
        self._overdue: asyncio.TimerHandle | None = None
        self._stop_began: float | None = None

    async def run(self, start: Callable[[], None]) -> None:
        """Run the tasks `start` spawns until one raises Stopped or fails (then `failed`)."""
        me = asyncio.current_task()
        assert me is not None
        cancels = me.cancelling()
        try:
            async with asyncio.TaskGroup() as tg:
                self._tg = tg
                start()
        except* Stopped:
            pass
        except* Exception:
            self.failed = True  # each failure was logged with its traceback where it happened
        finally:
            self._tg, self._ended = None, True
            if self._overdue is not None:
                self._overdue.cancel()
        # Python 3.11's group cancels its parent when a task ends it and leaves that cancel
        # counted: on 3.11.2 every later asyncio.timeout (the shutdown's) would then raise
        # CancelledError instead of TimeoutError.
        while me.cancelling() > cancels:
            me.uncancel()

    def spawn(self, name: str, body: Callable[[], Awaitable[None]]) -> asyncio.Task[None]:
        """Start `body` as the task `name`; only while run() is running."""
        assert self._tg is not None
        task = self._tg.create_task(self._owned(name, body), name=name)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    def spawn_while_running(self, name: str, body: Callable[[], Awaitable[None]]
                            ) -> asyncio.Task[None] | None:
        """spawn(), or None once the crew is stopping (the group then takes no new task)."""
        running = self._tg is not None and self._overdue is None
        return self.spawn(name, body) if running else None

    def winding_down(self) -> None:
        """The tasks are being stopped: any still running `stop_limit_s` from now is overdue."""
        if self._overdue is None:
            self._stop_began = self.loop.time()
            self._overdue = self.loop.call_later(self.stop_limit_s, self._stop_overdue)

    @property
    def stop_deadline(self) -> float:
        """When the stop must be over (loop time): `stop_limit_s` after it began."""
        began = self._stop_began if self._stop_began is not None else self.loop.time()
        return began + self.stop_limit_s

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
        if self._ended:
            return
        late = sorted((task for task in self._tasks if not task.done()), key=asyncio.Task.get_name)
        # Also before the tasks started (a stop during start-up): look again later.
        self._overdue = self.loop.call_later(RECANCEL_S, self._stop_overdue)
        if not late:
            return
        if not self.failed:
            self.notifier.send(STATUS=f"failed: stop overdue in task {late[0].get_name()}")
        self.failed = True
        for task in late:
            if task not in self._named:  # once per task, however often it is cancelled again
                self._named.add(task)
                log.error("stop overdue: task %s still running %.0f s after the stop began "
                          "(waiting at %s); cancelling it again", task.get_name(),
                          self.stop_limit_s, _where(task))
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
