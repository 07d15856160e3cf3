"""Blocking calls off the event loop, each owner in a lane of its own.

A lane is one thread, started when its owner has a call to make and ended after `idle_s`
without one. Owners do not share lanes: a console whose stdout is a full pipe, a hung
serial device or a stalled disk holds its own lane only, never the status file, a snapshot,
another output or the loop (asyncio's default executor is one queue for all of them, and
`asyncio.run` waits for its threads at exit, so one stuck call there held the whole stop).

A call whose awaiting task is cancelled returns at once to the loop; the thread finishes
the call on its own time (a daemon thread: a call stuck for ever does not keep the process
from exiting) and the next call of that lane waits behind it. Thread-safety of what a call
touches is the caller's business, as with `asyncio.to_thread`.
"""

from __future__ import annotations

import asyncio
import contextlib
import queue
import threading
from collections.abc import Callable
from typing import Any, TypeVar

T = TypeVar("T")

# A lane's thread ends after this long without a call: an output shown every few seconds
# keeps its thread, one shown once an hour does not hold a stack meanwhile.
IDLE_S = 30.0

_Job = tuple[Callable[[], Any], asyncio.AbstractEventLoop, "asyncio.Future[Any]"]


class Lane:
    """One owner's thread for blocking calls; `await lane.call(fn, *args)`."""

    def __init__(self, name: str, idle_s: float = IDLE_S) -> None:
        self.name = name
        self.idle_s = idle_s
        self._jobs: queue.SimpleQueue[_Job] = queue.SimpleQueue()
        self._lock = threading.Lock()
        self._running = False

    async def call(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """Run `fn(*args, **kwargs)` in this lane's thread; return (or raise) what it did."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future[T] = loop.create_future()
        with self._lock:
            self._jobs.put((lambda: fn(*args, **kwargs), loop, future))
            if not self._running:
                try:
                    threading.Thread(target=self._work, name=f"lane-{self.name}",
                                     daemon=True).start()
                except BaseException:
                    # No thread (out of memory): this call fails, the next one tries again.
                    while not self._jobs.empty():
                        self._jobs.get_nowait()
                    raise
                self._running = True
        return await future

    @property
    def alive(self) -> bool:
        """The lane's thread runs now (it ends after `idle_s` without a call)."""
        return self._running

    def _work(self) -> None:
        while True:
            try:
                job, loop, future = self._jobs.get(timeout=self.idle_s)
            except queue.Empty:
                with self._lock:
                    if self._jobs.empty():
                        self._running = False
                        return
                continue
            try:
                result = job()
            except BaseException as exc:
                _deliver(loop, future, None, exc)
            else:
                _deliver(loop, future, result, None)
            del job, future  # nothing of a finished call stays alive in an idle thread


def _deliver(loop: asyncio.AbstractEventLoop, future: asyncio.Future[Any], result: object,
             error: BaseException | None) -> None:
    def settle() -> None:
        if future.done():  # its task was cancelled meanwhile
            return
        if error is not None:
            future.set_exception(error)
        else:
            future.set_result(result)
    # The loop may be closed: the agent stopped while this call was stuck.
    with contextlib.suppress(RuntimeError):
        loop.call_soon_threadsafe(settle)


class FileKeeper:
    """The one writer of a file in its own lane: each write starts after the one before has
    landed (also when that one's waiter was cancelled: its thread goes on), so the last write
    asked for is the last to land; what landed is remembered."""

    def __init__(self, lane: Lane) -> None:
        self.lane = lane
        self._inflight: asyncio.Future[None] | None = None

    async def settled(self) -> None:
        """Wait for the write in flight, if any (its outcome is its own waiter's business)."""
        previous = self._inflight
        if previous is not None and not previous.done():
            with contextlib.suppress(Exception):
                await asyncio.shield(previous)

    async def write(self, fn: Callable[..., None], *args: Any,
                    landed: Callable[[], None]) -> None:
        """Run `fn(*args)` in the lane after the write before it; `landed()` once it has
        (even when this waiter was cancelled: the disk holds it all the same). A stop's cancel
        leaves the write to finish; its errors reach the waiter."""
        await self.settled()
        inflight = asyncio.ensure_future(self.lane.call(fn, *args))
        self._inflight = inflight

        def done(future: asyncio.Future[None]) -> None:
            if not future.cancelled() and future.exception() is None:
                landed()

        inflight.add_done_callback(done)
        await asyncio.shield(inflight)
