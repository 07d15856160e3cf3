"""One worker task per output: holds only the newest view, retries with backoff, never blocks.

An output whose open(), show() or repaint() does not return within STUCK_AFTER_S (or its
`timeout_s` and a second, for kinds that have one) is marked failing and logged once as stuck;
the status file says for how long. Only its own worker waits: its blocking I/O runs in a lane
of its own (agent/lanes.py), and newer views replace the pending one meanwhile.

While nothing is pending the worker keeps the display honest: an output with `repaint()`
(base.Repaintable) gets the view last shown again every `refresh_s`, and an output with
`watch()` (base.Watched) is watched for a lost or replaced device. Both count a failure like
a failed show(): close, back off, re-open, show the newest view in full.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Literal, cast

import msgspec

from agent.model.view import View
from agent.outputs.base import Output, OutputConfig, OutputStats, Repaintable

log = logging.getLogger(__name__)

RETRY_START_S = 0.1
CLOSE_TIMEOUT_S = 0.3
STUCK_AFTER_S = 5.0


class OutputWorker:
    """Feeds one output; a slow or failing output delays nobody else."""

    def __init__(self, name: str, output: Output, retry_max_s: float,
                 refresh_s: float = 0.0, stuck_after_s: float = STUCK_AFTER_S) -> None:
        self.name = name
        self.stuck_after_s = stuck_after_s
        # Since when (loop time) the output's current call runs; the timer that looks at it.
        self._busy_since: float | None = None
        self._stuck_check: asyncio.TimerHandle | None = None
        self.output = output
        self.retry_max_s = retry_max_s
        # Only outputs that can repaint are refreshed; 0 disables.
        self.refresh_s = refresh_s if callable(getattr(output, "repaint", None)) else 0.0
        self._painted_at = 0.0
        self.stats = OutputStats()
        self._latest: View | None = None
        self._shown: View | None = None
        self._wake = asyncio.Event()
        self._idle = asyncio.Event()
        self._idle.set()
        self._opened = False

    @classmethod
    def for_config(cls, name: str, output: Output, config: OutputConfig) -> OutputWorker:
        """A worker with the retry cap and (for repaintable kinds) `refresh_s` of `config`."""
        refresh = getattr(config, "refresh_s", 0.0)
        timeout = getattr(config, "timeout_s", 0.0)  # exec: a run may take this long
        stuck = (max(STUCK_AFTER_S, float(timeout) + 1.0) if isinstance(timeout, int | float)
                 else STUCK_AFTER_S)
        return cls(name, output, config.retry_max_s,
                   float(refresh) if isinstance(refresh, int | float) else 0.0, stuck)

    def report(self, now: float) -> OutputStats:
        """Its counters for the status file, with how long a stuck call has been running."""
        since = self._busy_since
        if since is None or now - since < self.stuck_after_s:
            return self.stats
        return msgspec.structs.replace(self.stats, stuck_s=round(now - since, 1))

    async def run(self) -> None:
        """Feed the output until cancelled (the runtime's task group owns this), then close it."""
        try:
            await self._run()
        finally:
            if self._opened:
                await self._close(CLOSE_TIMEOUT_S)

    def submit(self, view: View) -> None:
        """Make `view` the next thing to show; an older pending view is dropped."""
        self._latest = view
        self._idle.clear()
        self._wake.set()

    async def flush(self, within_s: float) -> bool:
        """Wait until the newest view is shown (True) or `timeout` passes (False)."""
        try:
            async with asyncio.timeout(within_s):
                await self._idle.wait()
        except TimeoutError:
            return False
        return True

    async def _close(self, within_s: float) -> None:
        self._opened = False
        try:
            async with asyncio.timeout(within_s):
                await self.output.close()
        except Exception as exc:  # a broken close must not stop the others
            log.warning("output %s: close failed: %s", self.name, exc)

    async def _run(self) -> None:
        delay = RETRY_START_S
        while True:
            action = await self._next()
            if isinstance(action, Exception):
                delay = await self._recover(action, delay)
                continue
            view = self._shown if action == "repaint" else self._latest
            if view is None or (action == "show" and view is self._shown):
                self._idle.set()
                continue
            self._busy()
            try:
                if not self._opened:
                    await self.output.open()
                    self._opened = True
                if action == "repaint":
                    await cast(Repaintable, self.output).repaint(view)
                else:
                    await self.output.show(view)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                self._busy_since = None
                delay = await self._recover(exc, delay)
                continue
            self._busy_since = None
            self.stats.success(self.name)
            delay = RETRY_START_S
            self.stats.ok += 1
            self._shown = view
            self._painted_at = asyncio.get_running_loop().time()
            if self._latest is view:
                self._idle.set()

    async def _next(self) -> Literal["show", "repaint"] | Exception:
        """Wait for a new view, the refresh time, or the output's watch() to raise."""
        if self._wake.is_set() or self._shown is None or not self._opened:
            await self._wake.wait()
            self._wake.clear()
            return "show"
        waits: list[asyncio.Future[object]] = [asyncio.ensure_future(self._wake.wait())]
        watch = getattr(self.output, "watch", None)
        if callable(watch):
            waits.append(asyncio.ensure_future(watch()))
        timeout = None
        if self.refresh_s > 0:
            loop = asyncio.get_running_loop()
            timeout = max(0.0, self._painted_at + self.refresh_s - loop.time())
        try:
            done, _ = await asyncio.wait(waits, timeout=timeout,
                                         return_when=asyncio.FIRST_COMPLETED)
        finally:
            for waiter in waits:
                waiter.cancel()
            await asyncio.gather(*waits, return_exceptions=True)
        if waits[0] in done:
            self._wake.clear()
            return "show"
        if len(waits) > 1 and waits[1] in done:
            error = None if waits[1].cancelled() else waits[1].exception()
            return error if isinstance(error, Exception) else RuntimeError(
                "device lost (watch ended)")
        return "repaint"

    def _busy(self) -> None:
        """A call to the output starts: look at it again when it would be stuck."""
        loop = asyncio.get_running_loop()
        self._busy_since = loop.time()
        if self._stuck_check is None:  # one timer per worker, not one per call
            self._stuck_check = loop.call_later(self.stuck_after_s, self._look)

    def _look(self) -> None:
        self._stuck_check = None
        since = self._busy_since
        if since is None:
            return
        loop = asyncio.get_running_loop()
        if loop.time() - since < self.stuck_after_s:  # a newer call: look at that one later
            self._stuck_check = loop.call_at(since + self.stuck_after_s, self._look)
            return
        self._failed(RuntimeError(f"stuck: no answer for {self.stuck_after_s:g} s"),
                     counted=False)

    async def _recover(self, exc: Exception, delay: float) -> float:
        """Count the failure, close, back off; the newest view is then shown in full."""
        self._failed(exc)
        self._shown = None
        await self._close(1.0)
        await asyncio.sleep(delay)
        self._wake.set()  # retry with whatever is newest by then
        return min(delay * 2, self.retry_max_s)

    def _failed(self, exc: Exception, counted: bool = True) -> None:
        text = f"{type(exc).__name__}: {exc}"[:200] if counted else str(exc)[:200]
        self.stats.failure(self.name, text, counted)
